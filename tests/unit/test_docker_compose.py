"""docker-compose.yml cannot run here (no Docker engine); this keeps it in step with the
code: every service is started the way `make run` starts it, after healthy PostgreSQL and
RabbitMQ and the migrations."""

import importlib
from pathlib import Path

import yaml

from shared.stack import SERVICES

COMPOSE = yaml.safe_load((Path(__file__).resolve().parents[2] / "docker-compose.yml").read_text())["services"]


def test_every_service_runs_its_module_after_its_dependencies():
    for service in SERVICES:
        spec = COMPOSE[service]
        assert spec["command"] == f"nameko run --config config.yaml services.{service}.service"
        importlib.import_module(f"services.{service}.service")
        assert spec["depends_on"]["postgres"]["condition"] == "service_healthy"
        assert spec["depends_on"]["rabbitmq"]["condition"] == "service_healthy"
        assert spec["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
        env = spec["environment"]
        assert env["DATABASE_URL"].startswith("postgresql://") and "@postgres:" in env["DATABASE_URL"]
        assert "@rabbitmq:" in env["AMQP_URI"] and env["HEALTHKIT_URL"] == "http://healthkit-sim:8010"


def test_the_infrastructure_has_healthchecks_and_the_management_image():
    assert "healthcheck" in COMPOSE["postgres"] and "healthcheck" in COMPOSE["rabbitmq"]
    assert COMPOSE["rabbitmq"]["image"].endswith("-management")
    assert "shared.migrate" in COMPOSE["migrate"]["command"]
    assert COMPOSE["gateway"]["environment"]["GATEWAY_ADDRESS"] == "0.0.0.0:8000"
    assert COMPOSE["healthkit-sim"]["command"] == "python -m shared.healthkit serve"


def test_postgresql_has_connections_for_a_second_instance_of_each_service():
    # one instance of everything may hold about 85 connections (README: PostgreSQL connections)
    command = COMPOSE["postgres"]["command"]
    assert command[0] == "postgres" and "max_connections=300" in command
