# Airflow worker/scheduler image with otedi and its locked dependencies.
# Build: docker build -t otedi-airflow .
FROM apache/airflow:3.3.2-python3.11

USER airflow
WORKDIR /opt/otedi
COPY --chown=airflow:root pyproject.toml constraints.txt README.md ./
COPY --chown=airflow:root otedi ./otedi
COPY --chown=airflow:root mappings ./mappings
COPY --chown=airflow:root sample_edi ./sample_edi
RUN pip install --no-cache-dir -c constraints.txt ".[airflow]"

# Rules and configuration are data: point otedi at the copied mappings/ (mount your own over it).
ENV OTEDI_MAPPINGS=/opt/otedi/mappings \
    OTEDI_HOME=/opt/airflow/otedi
COPY --chown=airflow:root dags /opt/airflow/dags
WORKDIR /opt/airflow
