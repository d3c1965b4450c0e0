"""Airflow's own authentication and authorization for every Filegate endpoint.

Authentication: the auth manager's JWT, from the `Authorization: Bearer` header or the `_token` cookie the Airflow UI
sets (the UI's iframe sends only the cookie).

Authorization follows the Airflow permissions of each feed's DAG, whatever the auth manager (SimpleAuthManager
locally, FabAuthManager on MWAA, where they are FAB permissions on the resources `DAG:<dag_id>`). This module is
the only place that states the rule; routes ask `FeedAccess`:
- a user may read a feed's files, history, API calls, quality, errors, counts, summary and aggregates when the auth
  manager lets them read (GET) the DAG `process_<feed>`;
- the daily reports cover every feed, so reading them needs read access to the DAG `daily_report` and to every feed
  Filegate knows (every contract, and every feed that has files in the status store);
- uploading to a feed needs permission to trigger (create runs of) `process_<feed>`;
- reprocessing files needs permission to trigger `reprocess_files` and read access to each file's feed;
- downloading a file's raw copy, rejected rows or reason needs read access to its feed, like its detail.
"""

from __future__ import annotations

from functools import cached_property
from typing import Annotated, Any

from airflow.api_fastapi.app import get_auth_manager
from airflow.api_fastapi.auth.managers.models.resource_details import DagAccessEntity, DagDetails
from airflow.api_fastapi.core_api.security import bearer_scheme, get_user, oauth2_scheme
from fastapi import Depends, HTTPException, Request, status

from filegate.orchestration.webapp.backend import Backend, get_backend

REPORT_DAG_ID = "daily_report"

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


def feed_dag_id(feed: str) -> str:
    return f"process_{feed}"


def may_read_dag(user: Any, dag_id: str) -> bool:
    return bool(get_auth_manager().is_authorized_dag(method="GET", details=DagDetails(id=dag_id), user=user))


def may_trigger(user: Any, dag_id: str) -> bool:
    """Whether the auth manager lets this user create runs of the DAG (what 'Trigger' needs in the UI)."""
    return bool(get_auth_manager().is_authorized_dag(method="POST", access_entity=DagAccessEntity.RUN,
                                                      details=DagDetails(id=dag_id), user=user))


def require_trigger(user: Any, dag_id: str, what: str = "upload to its feed") -> None:
    if not may_trigger(user, dag_id):
        raise HTTPException(status.HTTP_403_FORBIDDEN,
                            f"user {user_name(user)!r} may not trigger {dag_id}, so may not {what}")


def require_read(user: Any, feed: str) -> None:
    """403 unless the user may read the feed's DAG. The same answer for a feed that does not exist, so the
    refusal says nothing about which feeds there are."""
    dag_id = feed_dag_id(feed)
    if not may_read_dag(user, dag_id):
        raise HTTPException(status.HTTP_403_FORBIDDEN,
                            f"user {user_name(user)!r} may not read feed {feed!r}: that needs read permission on "
                            f"the DAG {dag_id} (with the FAB auth manager: can_read on DAG:{dag_id})")


def readable_feeds(user: Any, backend: Backend) -> frozenset[str]:
    """The feeds, among those Filegate knows, whose DAG the user may read: one batch call to the auth manager.

    `filter_authorized_dag_ids` rather than `get_authorized_dag_ids`: the latter only returns DAGs present in the
    metadata database, so the files of a feed whose DAG has not been parsed (yet, or any more) would vanish even
    for an admin; the former asks about exactly the DAG ids we name, and auth managers may override it with one
    query (FAB and SimpleAuthManager answer from permissions already loaded with the user)."""
    return _known_and_readable(user, backend)[1]


def _known_and_readable(user: Any, backend: Backend) -> tuple[frozenset[str], frozenset[str]]:
    known = backend.feed_names() | set(backend.queries.feeds_seen())
    by_dag = {feed_dag_id(feed): feed for feed in known}
    allowed = get_auth_manager().filter_authorized_dag_ids(dag_ids=set(by_dag), user=user, method="GET")
    return frozenset(known), frozenset(by_dag[dag_id] for dag_id in allowed if dag_id in by_dag)


class FeedAccess:
    """What one request's user may read. The readable set is computed once, on first use: a request about one
    named feed only asks the auth manager about that feed."""

    def __init__(self, user: Any, backend: Backend) -> None:
        self.user = user
        self.backend = backend

    @cached_property
    def _sets(self) -> tuple[frozenset[str], frozenset[str]]:
        return _known_and_readable(self.user, self.backend)

    @property
    def feeds(self) -> frozenset[str]:
        """The feeds whose rows this user may see: queries filter by it in SQL (empty: nothing)."""
        return self._sets[1]

    def require(self, feed: str) -> None:
        require_read(self.user, feed)

    def scope(self, feed: str | None) -> frozenset[str]:
        """The feeds a list may return rows of: every readable feed, or only `feed` (403 if it is not readable)."""
        if feed is None:
            return self.feeds
        self.require(feed)
        return frozenset({feed})

    def require_reports(self) -> None:
        """Daily reports cover every feed: read access to `daily_report` and to every feed Filegate knows."""
        known, readable = self._sets
        if not may_read_dag(self.user, REPORT_DAG_ID) or not known <= readable:
            raise HTTPException(status.HTTP_403_FORBIDDEN,
                                f"user {user_name(self.user)!r} may not read the daily reports: they cover every "
                                f"feed, so they need read permission on the DAG {REPORT_DAG_ID} and on every "
                                "feed's process_<feed> DAG")


def feed_access(user: CurrentUser, backend: Annotated[Backend, Depends(get_backend)]) -> FeedAccess:
    return FeedAccess(user, backend)


Access = Annotated[FeedAccess, Depends(feed_access)]
