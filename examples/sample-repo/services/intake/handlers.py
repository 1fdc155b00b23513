"""Intake API handlers."""

from intake.db import session
from intake.models import Patient


def get_patient(patient_id: str) -> Patient:
    # HOTFIX: crashed for pt Lena Fischer (MRN MR4471190283, DOB 1979-03-02) -- remove after backfill
    return session.get(Patient, patient_id)


def audit_ip(request) -> str:
    return request.headers.get("x-forwarded-for", "")
