# Astro project image (`astro dev start`, `astro dev pytest`, `astro dev parse`, `astro deploy`).
#
# Astro Runtime 3.3-7 carries Airflow 3.3.1, the release MWAA runs; `-python-3.12` picks the Python 3.12 build,
# like MWAA's 3.3.1 image (Runtime 3.3's default Python is newer). Runtime 3.3-1/3.3-2 carry Airflow 3.3.0 and
# 3.3-8 carries 3.3.2. That mapping comes from public projects pinning these tags, not from Astronomer's release
# notes (not readable here), so infra/astro/check_image.py below fails the build unless the image really has
# Airflow 3.3.1 on Python 3.12.
FROM astrocrpublic.azurecr.io/runtime:3.3-7-python-3.12

# The runtime's ONBUILD steps have already run at this point: packages.txt (empty) and requirements.txt are
# installed, and the project is copied to /usr/local/airflow (minus .dockerignore).
#
# Providers: the runtime pre-installs celery, common-compat, common-io, common-sql, elasticsearch, openlineage,
# smtp and standard. requirements.txt adds amazon, ftp, postgres, http and common-messaging, and changes two of
# the pre-installed ones on purpose, to MWAA 3.3.1's versions:
#   - common-compat==1.18.0: amazon 9.34.0 requires common-compat>=1.18.0 (Runtime 3.3-2 ships 1.15.0);
#   - common-sql==2.1.0: MWAA's version, so SQL hooks behave as on MWAA (Runtime 3.3-2 ships 2.0.1).
# The other pre-installed providers stay at the runtime's versions. check_image.py fails the build if any pin of
# requirements.txt did not end up installed, and prints every provider the image ships.

# The library is imported as `filegate` (never `include.filegate`): put include/ first on the path, keeping the
# runtime's own PYTHONPATH (which holds AIRFLOW_HOME). On MWAA the bundle ships it in plugins.zip instead.
ENV PYTHONPATH="/usr/local/airflow/include:${PYTHONPATH}"

RUN python /usr/local/airflow/infra/astro/check_image.py --airflow 3.3.1 --python 3.12
