"""Cookie sessions for the console only: the API stays stateless (no cookie is read or
set outside ``/console``). The cookie is signed (itsdangerous, ``CMS_SECRET_KEY``),
``HttpOnly``, ``SameSite=Strict``, ``Secure`` when the request came over HTTPS, and
holds no key: only which key signed in (its id) and when the user was last seen."""

from __future__ import annotations

from typing import Any

from flask import Flask, Request, Response
from flask.sessions import SecureCookieSessionInterface

PREFIX = "/console"
COOKIE = "cms_console"


class ConsoleSessions(SecureCookieSessionInterface):
    salt = "cms-console-session"

    def open_session(self, app: Flask, request: Request) -> Any:
        if not request.path.startswith(PREFIX):
            return None  # the API: stateless
        return super().open_session(app, request)

    def save_session(self, app: Flask, session: Any, response: Response) -> None:
        if session is None:
            return
        super().save_session(app, session, response)

    def get_cookie_name(self, app: Flask) -> str:
        return COOKIE

    def get_cookie_path(self, app: Flask) -> str:
        return PREFIX

    def get_cookie_httponly(self, app: Flask) -> bool:
        return True

    def get_cookie_samesite(self, app: Flask) -> str:
        return "Strict"

    def get_cookie_secure(self, app: Flask) -> bool:
        from flask import request

        return request.is_secure
