"""The password policy: one function, called wherever a password is set (service, CLI, console, API).

At least `MIN_LENGTH` characters, at least two kinds of character (lower case, upper case, digits, other),
not one character repeated, not the username (nor containing it), and not one of the 30,000 most common
passwords (the leaked-password frequency list that ships with the `zxcvbn` package: "password123",
"1q2w3e4r5t", "qwertyuiop" meet every other rule). Long passphrases of one kind ("correct horse battery
staple") pass by length: `PASSPHRASE_LENGTH` characters need no second kind.
"""

from __future__ import annotations

from functools import cache

from models.errors import WeakPassword

MIN_LENGTH = 10
PASSPHRASE_LENGTH = 20
MAX_LENGTH = 200  # what the sign-in form and the token endpoint accept


def _kinds(password: str) -> int:
    return sum((any(c.islower() for c in password), any(c.isupper() for c in password),
                any(c.isdigit() for c in password), any(not c.isalnum() for c in password)))


@cache
def common_passwords() -> frozenset[str]:
    """The common-password list of zxcvbn (lower case), loaded on first use, not at import."""
    from zxcvbn.frequency_lists import FREQUENCY_LISTS

    return frozenset(FREQUENCY_LISTS["passwords"])


def check_password_policy(password: str, *, username: str = "") -> None:
    """Raises WeakPassword (with the rule broken in `details.rule`) unless the password meets the policy."""
    if len(password) < MIN_LENGTH:
        raise WeakPassword(f"a password needs at least {MIN_LENGTH} characters", rule="min_length",
                           min_length=MIN_LENGTH)
    if len(password) > MAX_LENGTH:
        raise WeakPassword(f"a password has at most {MAX_LENGTH} characters", rule="max_length",
                           max_length=MAX_LENGTH)
    if len(set(password)) == 1:
        raise WeakPassword("a password cannot be one character repeated", rule="one_character")
    if len(password) < PASSPHRASE_LENGTH and _kinds(password) < 2:
        raise WeakPassword("a password needs two kinds of character (letters, digits, other) or "
                           f"{PASSPHRASE_LENGTH} characters", rule="one_kind")
    name = username.strip().lower()
    if name and name in password.lower():
        raise WeakPassword("a password cannot contain the username", rule="contains_username")
    if password.lower() in common_passwords():
        raise WeakPassword("this password is one of the most commonly used passwords; choose another",
                           rule="common_password")
