"""What every group of settings shares: the prefix of their environment variables, the
environment, and the refusal of values unsafe outside development.

The application's Settings (settings.py) is composed of groups: the service-wide one there and
one per optional feature, in <feature>_settings.py beside it, removed with the feature.
"""

from typing import Annotated, Literal, Self

from limits import parse
from pydantic import AfterValidator, BaseModel, model_validator
from pydantic_core import PydanticCustomError

ENV_PREFIX = "{{ cookiecutter.package_name.upper() }}_"
# The error type of refused settings; its ctx maps each refused setting to the reason.
REFUSED = "refused_settings"

Environment = Literal["development", "staging", "production"]


def rate_limit_text(value: str) -> str:
    parse(value)  # raises ValueError naming the bad limit
    return value


# A limit such as "100/minute" or "5 per second" (the `limits` library's notation).
RateLimit = Annotated[str, AfterValidator(rate_limit_text)]


def variable(setting: str) -> str:
    """The environment variable a setting is read from."""
    return f"{ENV_PREFIX}{setting.upper()}"


class SettingsGroup(BaseModel):
    """A group of settings with its own rules, composed with the others into Settings."""

    # Only development is lenient: every other environment (staging as much as production)
    # refuses the values unsafe outside a laptop.
    environment: Environment = "development"

    @property
    def lenient(self) -> bool:
        return self.environment == "development"

    def refusals(self) -> dict[str, str]:
        """Each refused setting and why. A group adds its own to those of super()."""
        return {}

    @model_validator(mode="after")
    def refuse_unsafe_values(self) -> Self:
        """One validator runs every group's rules: pydantic stops at the first model validator
        that raises, and one start must name every refused setting."""
        if refused := self.refusals():
            summary = "; ".join(f"{variable(name)}: {why}" for name, why in refused.items())
            raise PydanticCustomError(
                REFUSED, "{summary}", {"summary": summary, "settings": refused}
            )
        return self
