from __future__ import annotations

from django.urls import path

from testproject.demo import views

app_name = "demo"
urlpatterns = [
    path("", views.home, name="home"),
    path("projects/<int:pk>/", views.project_detail, name="project"),
    path("attachments/<int:pk>/delete/", views.attachment_delete, name="attachment-delete"),
]
