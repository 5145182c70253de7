"""The string formats CRDs support (kube-openapi ``strfmt``), keyed by name without dashes, as
predicates on the string."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Mapping
from datetime import date
from email.utils import parseaddr
from types import MappingProxyType


def _matches(pattern: str) -> Callable[[str], bool]:
    compiled = re.compile(pattern, re.ASCII)  # Go's \d and \s are ASCII-only
    return lambda text: compiled.fullmatch(text) is not None


def _is_date(text: str) -> bool:
    found = re.fullmatch(r"([0-9]{4})-([0-9]{2})-([0-9]{2})", text)
    if found is None:
        return False
    try:
        date(int(found[1]), int(found[2]), int(found[3]))
    except ValueError:
        return False
    return True


_CLOCK = re.compile(r"([0-9]{2}):([0-9]{2}):([0-9]{2})(.[0-9]+)?(z|([+-][0-9]{2}:[0-9]{2}))")


def _is_date_time(text: str) -> bool:
    parts = text.lower().split("t")
    if len(text) < 4 or len(parts) < 2 or not _is_date(parts[0]):
        return False
    clock = _CLOCK.fullmatch(parts[1])
    return clock is not None and clock[1] <= "23" and clock[2] <= "59" and clock[3] <= "59"


_GO_DURATION = re.compile(
    r"[-+]?(0|(([0-9]+(\.[0-9]*)?|\.[0-9]+)(ns|us|\u00b5s|\u03bcs|ms|s|m|h))+)")
_DURATION_UNITS = (("ns", "nano"), ("us", "\u00b5s", "micro"), ("ms", "milli"), ("s", "sec"),
                   ("m", "min"), ("h", "hr", "hour"), ("d", "day"), ("w", "wk", "week"))


def _is_duration(text: str) -> bool:
    """Go's time.ParseDuration, or strfmt's lenient "<n> <unit>" fallback."""
    if _GO_DURATION.fullmatch(text):
        return True
    for _, unit in re.findall(r"([0-9]+)\s*([A-Za-z\u00b5]+)", text, re.ASCII):
        unit = unit.strip().lower()
        for variants in _DURATION_UNITS:
            if unit.startswith(variants[-1]) or unit in variants:
                return True
    return False


def _is_ip(text: str) -> bool:
    """net.ParseIP, sloppy about IPv4 leading zeros as Kubernetes is."""
    if re.fullmatch(r"[0-9]{1,3}(\.[0-9]{1,3}){3}", text):
        return all(int(part) <= 255 for part in text.split("."))
    if ":" not in text or "%" in text:
        return False
    try:
        ipaddress.IPv6Address(text)
    except ValueError:
        return False
    return True


def _is_cidr(text: str) -> bool:
    address, slash, prefix = text.partition("/")
    if not slash or not _is_ip(address) or not re.fullmatch("[0-9]+", prefix):
        return False
    return int(prefix) <= (128 if ":" in address else 32)


def _is_mac(text: str) -> bool:
    for separator, width in ((":", 2), ("-", 2), (".", 4)):
        groups = text.split(separator)
        if len(groups) * width // 2 in (6, 8, 20) and all(
                re.fullmatch(f"[0-9A-Fa-f]{{{width}}}", group) for group in groups):
            return True
    return False


_HOST_CHAR = "a-zA-Z0-9$+<=>^`|~\u0080-\U0010ffff"  # \p{L}\p{S}, approximated
_HOSTNAME = re.compile(
    f"[{_HOST_CHAR}]((-?[{_HOST_CHAR}]{{0,62}})?)|([{_HOST_CHAR}](([{_HOST_CHAR}-]{{0,61}}"
    f"[{_HOST_CHAR}])?)(\\.)){{1,}}([a-zA-Z\u0080-\U0010ffff]){{2,63}}")


def _is_hostname(text: str) -> bool:
    return (_HOSTNAME.fullmatch(text) is not None and len(text.encode()) <= 255
            and all(len(part.encode()) <= 63 for part in text.split(".")))


def _is_email(text: str) -> bool:
    """Approximates net/mail.ParseAddress: "addr" or "Name <addr>" with a dot-atom addr."""
    _, address = parseaddr(text)
    atom = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
    return bool(address) and re.fullmatch(rf"{atom}(\.{atom})*@{atom}(\.{atom})*",
                                          address) is not None


def _is_uri(text: str) -> bool:
    """Approximates url.ParseRequestURI: an absolute path, or scheme:// or scheme:/ URI."""
    if not text or re.search("[\x00-\x1f\x7f]", text) or re.search("%(?![0-9A-Fa-f]{2})", text):
        return False
    if text.startswith("/"):
        return True
    found = re.fullmatch(r"[A-Za-z][A-Za-z0-9+.-]*:(/.*)", text, re.DOTALL)
    if found is None:
        return False
    if not found[1].startswith("//"):
        return True
    authority = re.split("[/?]", found[1][2:], maxsplit=1)[0].rpartition("@")[2]
    return re.fullmatch(r"([^\s\[\]<>\"{}|\\^`:]*|\[[0-9A-Fa-f:.]+\])(:[0-9]*)?",
                        authority) is not None


def _is_isbn10(text: str) -> bool:
    digits = re.sub(r"[\s-]+", "", text, flags=re.ASCII)
    if not re.fullmatch("[0-9]{9}X|[0-9]{10}", digits):
        return False
    total = sum((i + 1) * int(d) for i, d in enumerate(digits[:9]))
    return (total + 10 * (10 if digits[9] == "X" else int(digits[9]))) % 11 == 0


def _is_isbn13(text: str) -> bool:
    digits = re.sub(r"[\s-]+", "", text, flags=re.ASCII)
    if not re.fullmatch("[0-9]{13}", digits):
        return False
    total = sum((3 if i % 2 else 1) * int(d) for i, d in enumerate(digits[:12]))
    return int(digits[12]) == (10 - total % 10) % 10


_CREDIT_CARD = re.compile(
    "4[0-9]{12}(?:[0-9]{3})?|5[1-5][0-9]{14}|6(?:011|5[0-9][0-9])[0-9]{12}|3[47][0-9]{13}|"
    "3(?:0[0-5]|[68][0-9])[0-9]{11}|(?:2131|1800|35[0-9]{3})[0-9]{11}")


def _is_credit_card(text: str) -> bool:
    digits = re.sub("[^0-9]+", "", text)
    if not _CREDIT_CARD.fullmatch(digits):
        return False
    total = 0
    for i, digit in enumerate(int(d) for d in reversed(digits)):
        doubled = digit * 2 if i % 2 else digit
        total += doubled - 9 if doubled > 9 else doubled
    return total % 10 == 0


_UUID = "[0-9a-f]{8}-?[0-9a-f]{4}-?%s[0-9a-f]{3}-?%s[0-9a-f]{3}-?[0-9a-f]{12}"
_SHORT_NAME = "[a-z0-9]([-a-z0-9]*[a-z0-9])?"
_OCTET = "(0|[1-9][0-9]?|1[0-9][0-9]?|2[0-4][0-9]|25[0-5])"

FORMATS: Mapping[str, Callable[[str], bool]] = MappingProxyType({
    "bsonobjectid": _matches("[0-9a-fA-F]{24}"),
    "uri": _is_uri,
    "email": _is_email,
    "hostname": _is_hostname,
    "ipv4": lambda text: "." in text and _is_ip(text),
    "ipv6": lambda text: ":" in text and _is_ip(text),
    "cidr": _is_cidr,
    "mac": _is_mac,
    "uuid": _matches("(?i)" + _UUID % ("[0-9a-f]", "[0-9a-f]")),
    "uuid3": _matches("(?i)" + _UUID % ("3", "[0-9a-f]")),
    "uuid4": _matches("(?i)" + _UUID % ("4", "[89ab]")),
    "uuid5": _matches("(?i)" + _UUID % ("5", "[89ab]")),
    "isbn": lambda text: _is_isbn10(text) or _is_isbn13(text),
    "isbn10": _is_isbn10,
    "isbn13": _is_isbn13,
    "creditcard": _is_credit_card,
    "ssn": lambda text: len(text) == 11 and re.fullmatch(
        "[0-9]{3}[- ]?[0-9]{2}[- ]?[0-9]{4}", text) is not None,
    "hexcolor": _matches("#?([0-9a-fA-F]{3}|[0-9a-fA-F]{6})"),
    "rgbcolor": _matches(rf"rgb\(\s*{_OCTET}\s*,\s*{_OCTET}\s*,\s*{_OCTET}\s*\)"),
    "byte": _matches("(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=|"
                     "[A-Za-z0-9+/]{4})"),
    "password": lambda text: True,
    "date": _is_date,
    "duration": _is_duration,
    "datetime": _is_date_time,
    "k8sshortname": lambda text: len(text) <= 63 and re.fullmatch(_SHORT_NAME, text) is not None,
    "k8slongname": lambda text: len(text) <= 253 and re.fullmatch(
        rf"{_SHORT_NAME}(\.{_SHORT_NAME})*", text) is not None,
})
