"""Events on the wire: Avro schemas, the codec, validation, registration and compatibility."""
