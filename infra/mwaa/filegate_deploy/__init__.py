"""Builds and ships Filegate to AWS without Airflow: the MWAA bundle, its sync to S3, the CloudFormation template.

Run as `python -m filegate_deploy` with infra/mwaa on PYTHONPATH (the Makefile does this).
"""
