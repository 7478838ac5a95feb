# koppel on the official Airflow image. Build: docker compose build
FROM apache/airflow:3.3.2-python3.11
COPY --chown=airflow:root requirements.txt pyproject.toml README.md /opt/koppel/
COPY --chown=airflow:root koppel /opt/koppel/koppel
# The lock pins Airflow itself to the image's version; koppel registers as a provider.
RUN pip install --no-cache-dir -r /opt/koppel/requirements.txt \
 && pip install --no-cache-dir --no-deps /opt/koppel
