# Astro project image (`astro dev start`, `astro dev pytest`, `astro deploy`).
# Astro Runtime 3.3-x ships Airflow 3.3 on Python 3.12, like MWAA's 3.3.1 image. The tag below was chosen from
# Astronomer's published Runtime 3.3 line; which Airflow patch it carries was NOT verified here (no Docker or
# registry access): check `docker run --rm <image> airflow version` says 3.3.1 before relying on parity.
FROM astrocrpublic.azurecr.io/runtime:3.3-2

# The library is imported as `filegate` (never `include.filegate`): put include/ first on the path, keeping the
# runtime's own PYTHONPATH (which holds AIRFLOW_HOME). On MWAA the bundle ships it as dags/filegate/ instead.
ENV PYTHONPATH="/usr/local/airflow/include:${PYTHONPATH}"
