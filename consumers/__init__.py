"""The microservices of the drone-delivery saga (domain only: no Kafka, no SQL, no clock).

`consumers.domain.DOMAIN` declares them to choreo; each service lives in its own subpackage.
"""
