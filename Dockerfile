# Airflow worker/scheduler image with otedi and its runtime dependencies (no test tools).
# Build: docker build -t otedi-airflow .
#
# Stage 1 builds otedi's wheel. otedi/_data/{mappings,sample_edi,docs} are symlinks to the folders copied
# beside them, so the wheel carries mappings/, the sample extract and the extract contract as package data
# (otedi.config.data_path): the image needs no source tree and no OTEDI_MAPPINGS.
FROM apache/airflow:3.3.2-python3.11 AS wheel
USER airflow
WORKDIR /tmp/otedi
COPY --chown=airflow:root pyproject.toml ./
COPY --chown=airflow:root otedi ./otedi
COPY --chown=airflow:root mappings ./mappings
COPY --chown=airflow:root sample_edi ./sample_edi
COPY --chown=airflow:root docs ./docs
RUN pip wheel --no-cache-dir --no-deps --wheel-dir /tmp/dist .

# Stage 2: the base image as Airflow 3.3.2 ships it, plus otedi. constraints-runtime.txt is constraints.txt
# (the lock every test ran on: Airflow 3.3.2's own dependency closure as resolved for Python 3.11, and
# otedi's) less the dev and test tools (scripts/runtime_constraints.py); naming apache-airflow==3.3.2 keeps
# pip from moving the image's Airflow. Airflow's published constraints-3.3.2 file could not be fetched where
# this lock was made; see ../shared/reference/airflow_notes.md §0.
FROM apache/airflow:3.3.2-python3.11
USER airflow
COPY --chown=airflow:root constraints-runtime.txt /tmp/otedi/
COPY --from=wheel --chown=airflow:root /tmp/dist/ /tmp/otedi/dist/
RUN pip install --no-cache-dir -c /tmp/otedi/constraints-runtime.txt \
      "apache-airflow==3.3.2" "$(ls /tmp/otedi/dist/otedi-*.whl)[airflow]" \
 && rm -rf /tmp/otedi

# Rules and configuration ship inside the package; a practice's own rules: mount a mappings folder and set
# OTEDI_MAPPINGS to it.
ENV OTEDI_HOME=/opt/airflow/otedi
COPY --chown=airflow:root dags /opt/airflow/dags
WORKDIR /opt/airflow
