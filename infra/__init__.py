"""Settings, the AWS client factory, resource definitions and the embedded local stack."""
