-- koppel's state database, beside Airflow's metadata database (docker-compose.yaml).
CREATE DATABASE koppel OWNER airflow;
