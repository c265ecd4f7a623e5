"""The bedcheck device program (`bedcheck-edge`): pairing, task long-poll, burst capture from a camera,
stream, video file or image folder, local match, an outbox that survives crashes, sync, the nurse's page.

Imports only `models`; talks to the server over HTTP (models/wire)."""
