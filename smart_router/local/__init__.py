"""The whole pipeline on one machine: moto's server as S3/SQS/EventBridge/DynamoDB/SSM, the
transcription server and the batch worker as child processes, and the very same router
handler fed from an EventBridge rule whose local target is a queue."""
