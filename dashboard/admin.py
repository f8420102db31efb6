"""The demo models in the admin: filters and search sized for a million orders.

``show_full_result_count = False`` spares the changelist a second COUNT(*)
over the whole table on every filtered page; ``list_select_related`` fetches
the customer with the page in one query.
"""

from __future__ import annotations

from django.contrib import admin

from dashboard.models import Customer, Order


@admin.register(Customer)
class CustomerAdmin(admin.ModelAdmin[Customer]):
    list_display = ["name", "email", "country", "created_at"]
    list_filter = ["country"]
    search_fields = ["name", "email"]


@admin.register(Order)
class OrderAdmin(admin.ModelAdmin[Order]):
    list_display = [
        "reference",
        "customer",
        "status",
        "quantity",
        "amount",
        "placed_on",
        "is_gift",
        "created_at",
    ]
    list_filter = ["status", "is_gift", "created_at", "placed_on", "customer__country"]
    search_fields = ["reference", "=uuid", "customer__name", "customer__email"]
    list_select_related = ["customer"]
    raw_id_fields = ["customer"]
    readonly_fields = ["uuid", "updated_at"]
    show_full_result_count = False
    list_per_page = 50
