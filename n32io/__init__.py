"""I/O glue shared by the mitmproxy addons and the lab: pyOpenSSL contexts and an asyncio
HTTP/2 client. No protocol logic lives here (that is n32/); no mitmproxy imports either."""
