"""What a Python user's tools see: grpcio-reflection (which speaks the
v1alpha reflection protocol) lists every ordo service, and the standard
health check answers SERVING for each by name."""

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import ProtoReflectionDescriptorDatabase

SERVICES = ["ordo.v1.Status", "ordo.v1.Log", "ordo.v1.Kv", "ordo.v1.Txn", "ordo.v1.Acl", "ordo.v1.Sql"]


def test_python_reflection_lists_every_service(node):
    with grpc.insecure_channel(node) as channel:
        listed = set(ProtoReflectionDescriptorDatabase(channel).get_services())
    for service in SERVICES + ["grpc.health.v1.Health"]:
        assert service in listed, f"{service} missing from {sorted(listed)}"


def test_every_service_is_serving_by_name(node):
    with grpc.insecure_channel(node) as channel:
        health = health_pb2_grpc.HealthStub(channel)
        for service in SERVICES:
            answer = health.Check(health_pb2.HealthCheckRequest(service=service))
            assert answer.status == health_pb2.HealthCheckResponse.SERVING, service
