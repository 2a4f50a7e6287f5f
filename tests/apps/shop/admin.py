from __future__ import annotations

from django.contrib import admin
from import_export import resources
from import_export.admin import ImportExportModelAdmin

from tests.apps.shop.models import Product


class ProductResource(resources.ModelResource):
    class Meta:
        model = Product
        fields = ("id", "name")


@admin.register(Product)
class ProductAdmin(ImportExportModelAdmin):
    resource_classes = [ProductResource]
