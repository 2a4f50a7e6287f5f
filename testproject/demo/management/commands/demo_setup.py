"""``manage.py demo_setup``: the demo's login and a first project, created once."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand

from testproject.demo.models import Organization, Project

DEMO_USERNAME = "admin"
DEMO_PASSWORD = "admin"


class Command(BaseCommand):
    help = "Create the demo superuser (admin/admin) and an example project, if missing."

    def handle(self, *args: Any, **options: Any) -> None:
        user_model = get_user_model()
        if not user_model.objects.filter(username=DEMO_USERNAME).exists():
            user_model.objects.create_superuser(DEMO_USERNAME, "admin@example.com", DEMO_PASSWORD)
            self.stdout.write(f"Created the demo superuser {DEMO_USERNAME}/{DEMO_PASSWORD}.")
        if not Organization.objects.exists():
            organization = Organization.objects.create(name="Acme")
            Project.objects.create(organization=organization, name="Website")
            Project.objects.create(organization=organization, name="Mobile app")
            self.stdout.write("Created the organization Acme with two projects.")
