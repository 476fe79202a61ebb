"""FLAW (test process only): the replay window and the messageId cache accept everything."""
from n32 import replay

replay.ReplayWindow.check = lambda self, seq: True
replay.MessageIdCache.seen = lambda self, message_id, now=None: False
