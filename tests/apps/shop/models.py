from __future__ import annotations

from django.db import models


class Product(models.Model):
    name = models.CharField(max_length=100)
    photo = models.ImageField(upload_to="products/%Y/", blank=True)
    manual = models.FileField(upload_to="manuals/", blank=True)

    def __str__(self) -> str:
        return self.name
