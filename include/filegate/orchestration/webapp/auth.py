"""Airflow's own authentication for every Filegate endpoint: the auth manager's JWT, from the
`Authorization: Bearer` header or the `_token` cookie the Airflow UI sets (the UI's iframe sends only the cookie)."""

from __future__ import annotations

from typing import Annotated, Any

from airflow.api_fastapi.app import get_auth_manager
from airflow.api_fastapi.auth.managers.models.resource_details import DagAccessEntity, DagDetails
from airflow.api_fastapi.core_api.security import bearer_scheme, get_user, oauth2_scheme
from fastapi import Depends, HTTPException, Request, status

# Missing token → 401, bad token → 403, expired → 401: Airflow's own answers, unchanged.
CurrentUser = Annotated[Any, Depends(get_user)]


async def optional_user(request: Request, oauth_token: Annotated[str | None, Depends(oauth2_scheme)],
                        bearer: Annotated[Any, Depends(bearer_scheme)]) -> Any | None:
    """For the HTML page: an anonymous visitor is sent to the login page instead of getting JSON."""
    try:
        return await get_user(request, oauth_token, bearer)
    except HTTPException:
        return None


def user_name(user: Any) -> str:
    return str(user.get_name())


def may_trigger(user: Any, dag_id: str) -> bool:
    """Whether the auth manager lets this user create runs of the DAG (what 'Trigger' needs in the UI)."""
    return bool(get_auth_manager().is_authorized_dag(method="POST", access_entity=DagAccessEntity.RUN,
                                                      details=DagDetails(id=dag_id), user=user))


def require_trigger(user: Any, dag_id: str) -> None:
    if not may_trigger(user, dag_id):
        raise HTTPException(status.HTTP_403_FORBIDDEN,
                            f"user {user_name(user)!r} may not trigger {dag_id}, so may not upload to its feed")
