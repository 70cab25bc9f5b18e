"""Every API resource, mounted under /api/v1."""

from fastapi import APIRouter
{%- if cookiecutter.include_examples %}

from .articles import router as articles_router
{%- endif %}
{%- if cookiecutter.include_realtime %}
from .realtime import router as realtime_router
{%- endif %}

api_router = APIRouter(prefix="/api/v1")
{%- if cookiecutter.include_examples %}
api_router.include_router(articles_router)
{%- endif %}
{%- if cookiecutter.include_realtime %}
api_router.include_router(realtime_router)
{%- endif %}
