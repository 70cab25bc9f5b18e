"""CORS from an explicit origin list (settings.cors_origins); off when the list is empty."""

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware

from ..settings import Settings


def install_cors(app: FastAPI, settings: Settings) -> None:
    if not settings.cors_origins:
        return  # no browser origin allowed: no middleware on the request path
    app.add_middleware(
        CORSMiddleware,
        allow_origins=settings.cors_origins,
        allow_credentials=settings.cors_allow_credentials,
        allow_methods=["GET", "POST", "PUT", "DELETE"],
        allow_headers=["Authorization", "Content-Type", "X-Request-ID"],
        expose_headers=["X-Request-ID"],
    )
