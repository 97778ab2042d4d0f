"""The midnight launcher Lambda (template.yaml ``LauncherFunction``): when the work queue holds
messages, start spot GPU instances that run the batch worker (P15). Its own deployable, built
by ``launcher/Makefile`` with the ``launcher`` extra only (boto3 and Powertools, never torch)."""
