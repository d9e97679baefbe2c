"""The app's routes: each feature names its own in its `urls.py`."""

from training.evaluation import urls as evaluation_urls
from training.runs import urls as runs_urls

urlpatterns = [
    *runs_urls.urlpatterns,
    *evaluation_urls.urlpatterns,
]

api_urlpatterns = [
    *runs_urls.api_urlpatterns,
    *evaluation_urls.api_urlpatterns,
]
