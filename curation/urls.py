"""The app's routes: each feature names its own in its `urls.py`."""

from curation.connections import urls as connections_urls
from curation.generation import urls as generation_urls
from curation.io import urls as io_urls
from curation.labeling import urls as labeling_urls
from curation.projects import urls as projects_urls
from curation.quality import urls as quality_urls
from curation.review import urls as review_urls
from curation.rules import urls as rules_urls
from curation.sources import urls as sources_urls
from curation.splits import urls as splits_urls
from curation.workspace import urls as workspace_urls

urlpatterns = [
    *workspace_urls.urlpatterns,
    *splits_urls.urlpatterns,
    *io_urls.urlpatterns,
    *sources_urls.urlpatterns,
    *labeling_urls.urlpatterns,
    *rules_urls.urlpatterns,
    *quality_urls.urlpatterns,
    *connections_urls.urlpatterns,
    *generation_urls.urlpatterns,
    *review_urls.urlpatterns,
    *projects_urls.urlpatterns,
]

api_urlpatterns = [
    *workspace_urls.api_urlpatterns,
    *splits_urls.api_urlpatterns,
    *io_urls.api_urlpatterns,
    *sources_urls.api_urlpatterns,
    *labeling_urls.api_urlpatterns,
    *rules_urls.api_urlpatterns,
    *quality_urls.api_urlpatterns,
    *connections_urls.api_urlpatterns,
    *generation_urls.api_urlpatterns,
    *review_urls.api_urlpatterns,
    *projects_urls.api_urlpatterns,
]
