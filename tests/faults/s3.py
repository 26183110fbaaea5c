"""
s3.py — a small S3 client for the fault suite: SigV4 signing (header and
presigned query forms) and one keep-alive HTTP connection per client.

Only what the workload and the security tests need: path-style requests,
UNSIGNED-PAYLOAD (the body is not hashed, so a multi-MiB PUT costs no extra
SHA-256 on the client), and results as plain tuples. Every request has a
socket timeout, so a hung server shows up as an error, never a stuck thread.

Errors are sorted by what they tell a history checker:
  S3Client.request() returns (status, headers, body) when a whole response
  arrived. It raises NotSent when the request certainly never reached the
  server (connection refused, or the connect itself failed): the operation
  did not happen. Any other transport failure raises Indeterminate: the
  request may or may not have taken effect.

Caveats
- The canonical URI is built from the path exactly as given (already
  encoded with quote_key()); the gateway tries the AWS form first, which is
  what this produces.
- Not thread-safe: one client per thread.
"""

import datetime
import hashlib
import hmac
import http.client
import socket
import urllib.parse

UNSIGNED = "UNSIGNED-PAYLOAD"
EMPTY_SHA = hashlib.sha256(b"").hexdigest()


class NotSent(Exception):
    """The request never reached the server: it cannot have taken effect."""


class Indeterminate(Exception):
    """The request was (or may have been) sent, and no whole answer came back."""


def quote(s, safe="-_.~"):
    """Percent-encode with the SigV4 rules (unreserved characters stay)."""
    if isinstance(s, str):
        s = s.encode("utf-8")
    return urllib.parse.quote(s, safe=safe)


def quote_key(bucket, key=None):
    """The encoded path /bucket[/key], '/' kept inside the key."""
    if key is None:
        return "/" + quote(bucket)
    return "/" + quote(bucket) + "/" + quote(key, safe="-_.~/")


def canonical_query(params):
    """Sorted, encoded name=value pairs joined by '&' (None values give 'name=')."""
    items = list(params.items()) if isinstance(params, dict) else list(params or [])
    enc = sorted((quote(str(k)), quote("" if v is None else str(v))) for k, v in items)
    return "&".join("%s=%s" % kv for kv in enc)


def _hmac(key, msg):
    return hmac.new(key, msg.encode("utf-8"), hashlib.sha256).digest()


def signing_key(secret, date, region, service="s3"):
    k = _hmac(("AWS4" + secret).encode("utf-8"), date)
    k = _hmac(k, region)
    k = _hmac(k, service)
    return _hmac(k, "aws4_request")


def amz_now(now=None):
    now = now or datetime.datetime.now(datetime.timezone.utc)
    return now.strftime("%Y%m%dT%H%M%SZ")


def sign_headers(method, path, query, headers, ak, sk, region, payload=UNSIGNED, when=None):
    """Add x-amz-date, x-amz-content-sha256 and Authorization to headers
    (a dict that must already hold 'host'); every header in it is signed."""
    amzdate = when or amz_now()
    headers["x-amz-date"] = amzdate
    headers["x-amz-content-sha256"] = payload
    names = sorted(h.lower() for h in headers)
    lower = {h.lower(): " ".join(str(v).strip().split()) for h, v in headers.items()}
    canon = "\n".join([method, path, query,
                       "".join("%s:%s\n" % (n, lower[n]) for n in names),
                       ";".join(names), payload])
    scope = "%s/%s/s3/aws4_request" % (amzdate[:8], region)
    sts = "\n".join(["AWS4-HMAC-SHA256", amzdate, scope, hashlib.sha256(canon.encode("utf-8")).hexdigest()])
    sig = hmac.new(signing_key(sk, amzdate[:8], region), sts.encode("utf-8"), hashlib.sha256).hexdigest()
    headers["Authorization"] = ("AWS4-HMAC-SHA256 Credential=%s/%s, SignedHeaders=%s, Signature=%s"
                                % (ak, scope, ";".join(names), sig))
    return headers


def presign(method, host, path, ak, sk, region, expires, params=None, when=None):
    """A presigned path?query (query auth, only 'host' signed, UNSIGNED-PAYLOAD)."""
    amzdate = when or amz_now()
    scope = "%s/%s/s3/aws4_request" % (amzdate[:8], region)
    q = dict(params or {})
    q.update({"X-Amz-Algorithm": "AWS4-HMAC-SHA256", "X-Amz-Credential": "%s/%s" % (ak, scope),
              "X-Amz-Date": amzdate, "X-Amz-Expires": str(expires), "X-Amz-SignedHeaders": "host"})
    query = canonical_query(q)
    canon = "\n".join([method, path, query, "host:%s\n" % host, "host", UNSIGNED])
    sts = "\n".join(["AWS4-HMAC-SHA256", amzdate, scope, hashlib.sha256(canon.encode("utf-8")).hexdigest()])
    sig = hmac.new(signing_key(sk, amzdate[:8], region), sts.encode("utf-8"), hashlib.sha256).hexdigest()
    return path + "?" + query + "&X-Amz-Signature=" + sig


class S3Client:
    """One keep-alive connection to the gateway at endpoint (http://host:port)."""

    def __init__(self, endpoint, ak, sk, region="us-east-1", timeout=30.0):
        u = urllib.parse.urlsplit(endpoint)
        self.host, self.port = u.hostname, u.port or 80
        self.hostport = u.netloc
        self.ak, self.sk, self.region = ak, sk, region
        self.timeout = timeout
        self.conn = None

    def close(self):
        if self.conn is not None:
            try:
                self.conn.close()
            except OSError:
                pass
            self.conn = None

    def _connect(self):
        c = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
        try:
            c.connect()
        except OSError as e:
            c.close()
            raise NotSent("connect: %s" % e)
        c.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.conn = c

    def request(self, method, path, query="", body=None, headers=None, sign=True, timeout=None):
        """One request. path is encoded (quote_key), query canonical (canonical_query).
        Returns (status, {lower-case name: value}, body bytes)."""
        h = {"host": self.hostport}
        for k, v in (headers or {}).items():
            h[k] = v
        if sign:
            sign_headers(method, path, query, h, self.ak, self.sk, self.region)
        target = path + ("?" + query if query else "")
        # A kept-alive connection the server closed while idle fails on the
        # first write; that request never reached it, so one retry on a fresh
        # connection is safe.
        for attempt in (0, 1):
            fresh = self.conn is None
            if fresh:
                self._connect()
            if timeout is not None:
                self.conn.sock.settimeout(timeout)
            try:
                self.conn.request(method, target, body=body, headers=h)
            except (BrokenPipeError, ConnectionResetError) as e:
                self.close()
                if not fresh and attempt == 0:
                    continue
                raise Indeterminate("send: %s" % e)
            except OSError as e:
                self.close()
                raise Indeterminate("send: %s" % e)
            try:
                r = self.conn.getresponse()
                data = r.read()
            except http.client.RemoteDisconnected as e:
                self.close()
                if not fresh and attempt == 0 and method in ("GET", "HEAD"):
                    continue  # a read can be repeated; a write may have happened
                raise Indeterminate("response: %s" % e)
            except (OSError, http.client.HTTPException) as e:
                self.close()
                raise Indeterminate("response: %s: %s" % (type(e).__name__, e))
            hdrs = {k.lower(): v for k, v in r.getheaders()}
            if r.will_close:
                self.close()
            elif timeout is not None and self.conn is not None:
                self.conn.sock.settimeout(self.timeout)
            return r.status, hdrs, data
        raise Indeterminate("unreachable")

    # ---- S3 operations (path-style)

    def put(self, bucket, key, data, headers=None):
        return self.request("PUT", quote_key(bucket, key), body=data, headers=headers)

    def get(self, bucket, key, headers=None):
        return self.request("GET", quote_key(bucket, key), headers=headers)

    def delete(self, bucket, key):
        return self.request("DELETE", quote_key(bucket, key))

    def create_bucket(self, bucket):
        return self.request("PUT", quote_key(bucket))

    def list_keys(self, bucket, prefix=None):
        """Every key of a ListObjectsV2 listing, following continuation tokens.
        Returns (status, [keys]); status is that of the first failing page."""
        import xml.etree.ElementTree as ET
        keys, token = [], None
        while True:
            q = {"list-type": "2", "max-keys": "1000"}
            if prefix:
                q["prefix"] = prefix
            if token:
                q["continuation-token"] = token
            st, h, body = self.request("GET", quote_key(bucket), canonical_query(q))
            if st != 200:
                return st, keys
            root = ET.fromstring(body)
            ns = root.tag.split("}", 1)[0] + "}" if root.tag.startswith("{") else ""
            for c in root.findall(ns + "Contents"):
                keys.append(c.findtext(ns + "Key"))
            if root.findtext(ns + "IsTruncated") == "true":
                token = root.findtext(ns + "NextContinuationToken")
                if not token:
                    return 200, keys
            else:
                return 200, keys
