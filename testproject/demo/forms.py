from __future__ import annotations

from django import forms

from testproject.demo.models import Attachment, Organization, Project


class ProjectForm(forms.Form):
    organization = forms.CharField(max_length=100, help_text="Created if it does not exist yet.")
    name = forms.CharField(label="Project", max_length=100)

    def save(self) -> Project:
        organization, _ = Organization.objects.get_or_create(
            name=self.cleaned_data["organization"].strip()
        )
        project, _ = Project.objects.get_or_create(
            organization=organization, name=self.cleaned_data["name"].strip()
        )
        return project


class AttachmentForm(forms.ModelForm):
    class Meta:
        model = Attachment
        fields = ["file"]
