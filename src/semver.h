/*
 * semver.h: the tforge.semver type (Semantic Versioning 2.0.0).
 *
 * A semver is a varlena whose payload is
 *
 *     keylen (unsigned LEB128)  key (keylen bytes)  build metadata (rest)
 *
 * The key is an order-preserving byte string: memcmp() of two keys, the
 * shorter prefix being lower, gives SemVer 2.0.0 precedence. Equality, the
 * hash and the btree order therefore look at the key only and ignore build
 * metadata, as the specification requires. The key is
 *
 *     major minor patch  (0x03 | identifier...)
 *
 * where each number is SemverEncodeNumber()'s self-delimiting code, 0x03
 * marks a release (higher than any pre-release of the same core), and a
 * pre-release is a sequence of identifiers, each 0x01 + number (numeric
 * identifier) or 0x02 + its ASCII characters (alphanumeric identifier).
 * Tags 0x01 < 0x02 < 0x03 < '-' (0x2d), the lowest identifier character, so
 * "numeric < alphanumeric", "fewer identifiers is lower", "a release is
 * higher than its pre-releases" and ASCII order all fall out of memcmp().
 *
 * Build metadata is kept verbatim (without the '+') so text output
 * reproduces the input exactly; SemVer text has one canonical spelling per
 * value, so the key plus the build metadata is lossless.
 */
#ifndef TFORGE_SEMVER_H
#define TFORGE_SEMVER_H

#include "postgres.h"

#include "nodes/nodes.h"

#define SEMVER_TAG_NUMERIC	0x01
#define SEMVER_TAG_ALNUM	0x02
#define SEMVER_TAG_RELEASE	0x03

/* binary send/recv format: version byte, then the text form */
#define SEMVER_SEND_FORMAT	1

/* largest numeric identifier accepted: 2^63-1, so major() fits a bigint */
#define SEMVER_MAX_NUMBER	((uint64) PG_INT64_MAX)

/* why a string is not a semver (see SemverParse) */
typedef enum SemverErrorKind
{
	SEMVER_OK = 0,
	SEMVER_ERR_CORE_COUNT,		/* not three dot-separated core numbers */
	SEMVER_ERR_CORE_EMPTY,		/* an empty major/minor/patch */
	SEMVER_ERR_CORE_NOT_NUMBER, /* major/minor/patch has a non-digit */
	SEMVER_ERR_LEADING_ZERO,	/* numeric identifier with a leading zero */
	SEMVER_ERR_OVERFLOW,		/* numeric identifier above 2^63-1 */
	SEMVER_ERR_PRE_EMPTY,		/* nothing after '-' */
	SEMVER_ERR_PRE_EMPTY_IDENT, /* "a..b" in the pre-release */
	SEMVER_ERR_PRE_BAD_CHAR,	/* character outside [0-9A-Za-z-] */
	SEMVER_ERR_BUILD_EMPTY,		/* nothing after '+' */
	SEMVER_ERR_BUILD_EMPTY_IDENT,	/* "a..b" in the build metadata */
	SEMVER_ERR_BUILD_BAD_CHAR	/* character outside [0-9A-Za-z-] */
} SemverErrorKind;

typedef struct SemverError
{
	SemverErrorKind kind;
	int			part;			/* 0 major, 1 minor, 2 patch (core errors) */
	const char *what;			/* offending part of the input */
	int			whatlen;
} SemverError;

/* a parsed value's parts, pointing into the varlena */
typedef struct SemverParts
{
	const uint8 *key;
	int			keylen;
	const char *build;
	int			buildlen;
} SemverParts;

extern struct varlena *SemverParse(const char *str, int len, SemverError *err);
extern void SemverReportError(const char *str, int len, const SemverError *err,
							  Node *escontext);
extern void SemverGetParts(const struct varlena *v, SemverParts *parts);
extern int	SemverEncodeNumber(uint64 n, uint8 *out);

/* Inverse of SemverEncodeNumber; returns bytes consumed, 0 if truncated. */
static inline int
SemverDecodeNumber(const uint8 *p, const uint8 *end, uint64 *n)
{
	int			k;
	int			i;
	uint64		v = 0;

	if (p >= end)
		return 0;
	if (p[0] < 248)
	{
		*n = p[0];
		return 1;
	}
	k = p[0] - 0xF7;
	if (end - p < 1 + k)
		return 0;
	for (i = 0; i < k; i++)
		v = (v << 8) | p[1 + i];
	*n = v;
	return 1 + k;
}

#endif							/* TFORGE_SEMVER_H */
