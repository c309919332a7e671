"""One exception type per stage. Each names the thing that is wrong (file,
row, segment) in plain words; none carries PHI."""


class OtediError(Exception):
    """Base of every error the project raises on purpose."""


class ConfigError(OtediError):
    """A mappings/ file is missing or malformed."""


class ExtractError(OtediError):
    """A charge extract cannot be read at all (wrong type, no header, missing column)."""

    def __init__(self, file: str, message: str):
        self.file = file
        super().__init__(f"{file}: {message}")


class X12Error(OtediError):
    """An X12 file is malformed; names the segment number and id."""

    def __init__(self, message: str, *, segment_number: int | None = None, segment_id: str | None = None):
        self.segment_number = segment_number
        self.segment_id = segment_id
        where = ""
        if segment_number is not None:
            where = f"segment {segment_number}" + (f" ({segment_id})" if segment_id else "") + ": "
        super().__init__(where + message)
