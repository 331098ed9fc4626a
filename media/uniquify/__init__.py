"""Uniquification: many slightly different JPEG copies of each source image, and the zip that holds them.

The pure half of the feature (no Kafka, HTTP or object store), one concept a module: ``params`` (the
parameters, documented there), ``plan`` (the copies a job fans out into), ``copy`` (one copy), ``pixels``
(its transforms and JPEG), ``exif`` with ``cameras`` and ``exif_block`` (its EXIF), ``archive`` (the
manifest and the zip). The API follows imgfactory's ``/async/unique`` and ``/sync/single/unique``.
"""

# The processors and the sink import these from the package.
from media.uniquify.archive import manifest, write_zip
from media.uniquify.copy import make_copy
from media.uniquify.plan import plan_copies

__all__ = ["make_copy", "manifest", "plan_copies", "write_zip"]
