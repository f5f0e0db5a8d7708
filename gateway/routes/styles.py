"""The style catalog, with presigned thumbnail URLs for a picker."""

from fastapi import APIRouter
from pydantic import BaseModel

from gateway.dependencies import Caller, Client
from gateway.errors import ERRORS

router = APIRouter()


class CatalogStyle(BaseModel):
    name: str
    thumbnail_url: str


@router.get("/v1/styles", responses=ERRORS)
def styles(_: Caller, client: Client) -> list[CatalogStyle]:
    return [CatalogStyle(name=n, thumbnail_url=client.style_url(n)) for n in client.list_styles()]
