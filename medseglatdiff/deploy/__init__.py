"""The MONAI Deploy application of medseglatdiff (optional extra ``deploy``); see ``docs/deployment.md``.

``python -m medseglatdiff.deploy -i IN -o OUT -m MODEL`` runs it. :mod:`.model` and :mod:`.dicom` work
without the MONAI Deploy App SDK; :mod:`.operators` and :mod:`.app` need it (imported only when used).
"""
