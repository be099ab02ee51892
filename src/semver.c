/*
 * semver.c: the tforge.semver type: parsing, text and binary I/O, the
 * accessor functions and the error messages.
 *
 * The storage format (an order-preserving key plus the build metadata) is
 * described in semver.h; comparison, hashing and sort support live in
 * semver_ops.c. The parser is strict (SemVer 2.0.0 grammar, no surrounding
 * white space, no "v" prefix) and never throws: it returns what was wrong,
 * so semver_in can raise 22P02/22003 while to_semver() and is_semver() can
 * answer NULL/false.
 */
#include "postgres.h"

#include "fmgr.h"
#include "lib/stringinfo.h"
#include "libpq/pqformat.h"
#include "utils/builtins.h"

#include "semver.h"

static const char *const CoreName[3] = {"Major version", "Minor version", "Patch version"};

/*
 * Order-preserving, self-delimiting number code: 0..247 is one byte; larger
 * numbers are 0xF7 + k followed by k big-endian bytes (k minimal, 1..8), so a
 * longer code always means a larger number and memcmp() orders numbers.
 */
int
SemverEncodeNumber(uint64 n, uint8 *out)
{
	int			k;
	int			i;

	if (n < 248)
	{
		out[0] = (uint8) n;
		return 1;
	}
	k = 1;
	while (k < 8 && (n >> (8 * k)) != 0)
		k++;
	out[0] = (uint8) (0xF7 + k);
	for (i = 0; i < k; i++)
		out[1 + i] = (uint8) (n >> (8 * (k - 1 - i)));
	return 1 + k;
}

/* true for the characters SemVer allows in identifiers: [0-9A-Za-z-] */
static inline bool
IsIdentChar(char c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') ||
		(c >= 'A' && c <= 'Z') || c == '-';
}

/* record an error and return false, for the parser's early exits */
static bool
SetError(SemverError *err, SemverErrorKind kind, const char *what, int whatlen)
{
	err->kind = kind;
	err->what = what;
	err->whatlen = whatlen;
	return false;
}

/*
 * Parse a run of digits known to be non-empty and all digits: rejects a
 * leading zero and values above 2^63-1.
 */
static bool
ParseNumber(const char *s, int len, uint64 *out, SemverError *err)
{
	uint64		v = 0;
	int			i;

	if (len > 1 && s[0] == '0')
		return SetError(err, SEMVER_ERR_LEADING_ZERO, s, len);
	for (i = 0; i < len; i++)
	{
		int			d = s[i] - '0';

		if (v > (SEMVER_MAX_NUMBER - d) / 10)
			return SetError(err, SEMVER_ERR_OVERFLOW, s, len);
		v = v * 10 + d;
	}
	*out = v;
	return true;
}

/*
 * After ParseNumber failed: an overflow is kept aside (the first one) so
 * that a malformed string is reported as malformed (22P02) even when it
 * also holds a number too large (22003); true when parsing may go on.
 */
static bool
DeferOverflow(SemverError *err, SemverError *overflow)
{
	if (err->kind != SEMVER_ERR_OVERFLOW)
		return false;
	if (overflow->kind == SEMVER_OK)
		*overflow = *err;
	err->kind = SEMVER_OK;
	return true;
}

/*
 * Parse str[0..len) into a freshly palloc'd semver, or return NULL with
 * *err saying why.
 */
struct varlena *
SemverParse(const char *str, int len, SemverError *err)
{
	const char *end = str + len;
	const char *p = str;
	const char *core_end;
	const char *pre = NULL;
	const char *pre_end = NULL;
	const char *build = NULL;
	struct varlena *result;
	uint8	   *payload;
	uint8	   *key;
	uint8	   *k;
	int			keylen;
	int			lenlen;
	int			part;
	SemverError overflow;		/* first number too large, reported last */

	err->kind = SEMVER_OK;
	err->part = 0;
	overflow.kind = SEMVER_OK;

	/* The core ends at the first '-' or '+'; build metadata at the first '+'. */
	for (core_end = str; core_end < end && *core_end != '-' && *core_end != '+'; core_end++)
		;
	if (core_end < end && *core_end == '-')
	{
		pre = core_end + 1;
		for (pre_end = pre; pre_end < end && *pre_end != '+'; pre_end++)
			;
		if (pre_end < end)
			build = pre_end + 1;
	}
	else if (core_end < end)
		build = core_end + 1;

	/*
	 * A key is never longer than its text plus the release marker: a number
	 * code is at most as long as its digits, tags replace '-' and '.'.
	 */
	result = (struct varlena *) palloc(VARHDRSZ + 5 + len + 2);
	payload = (uint8 *) VARDATA(result);
	key = payload + 5;			/* moved down once keylen's size is known */
	k = key;

	/* version core: exactly three numbers */
	{
		int			dots = 0;
		const char *q;

		for (q = str; q < core_end; q++)
			if (*q == '.')
				dots++;
		if (dots != 2)
		{
			err->part = 0;
			SetError(err, SEMVER_ERR_CORE_COUNT, str, core_end - str);
			goto fail;
		}
	}
	for (part = 0; part < 3; part++)
	{
		const char *s = p;
		uint64		n = 0;

		while (p < core_end && *p != '.')
		{
			if (*p < '0' || *p > '9')
			{
				while (p < core_end && *p != '.')
					p++;
				err->part = part;
				SetError(err, SEMVER_ERR_CORE_NOT_NUMBER, s, p - s);
				goto fail;
			}
			p++;
		}
		err->part = part;
		if (p == s)
		{
			SetError(err, SEMVER_ERR_CORE_EMPTY, s, 0);
			goto fail;
		}
		if (!ParseNumber(s, p - s, &n, err) && !DeferOverflow(err, &overflow))
			goto fail;
		k += SemverEncodeNumber(n, k);
		p++;					/* the '.' (or one past core_end) */
	}

	/* pre-release identifiers */
	if (pre == NULL)
		*k++ = SEMVER_TAG_RELEASE;
	else if (pre == pre_end)
	{
		SetError(err, SEMVER_ERR_PRE_EMPTY, pre, 0);
		goto fail;
	}
	else
	{
		p = pre;
		for (;;)
		{
			const char *s = p;
			bool		digits = true;

			while (p < pre_end && *p != '.')
			{
				if (!IsIdentChar(*p))
				{
					while (p < pre_end && *p != '.')
						p++;
					SetError(err, SEMVER_ERR_PRE_BAD_CHAR, s, p - s);
					goto fail;
				}
				if (*p < '0' || *p > '9')
					digits = false;
				p++;
			}
			if (p == s)
			{
				SetError(err, SEMVER_ERR_PRE_EMPTY_IDENT, pre, pre_end - pre);
				goto fail;
			}
			if (digits)
			{
				uint64		n = 0;

				if (!ParseNumber(s, p - s, &n, err) && !DeferOverflow(err, &overflow))
					goto fail;
				*k++ = SEMVER_TAG_NUMERIC;
				k += SemverEncodeNumber(n, k);
			}
			else
			{
				*k++ = SEMVER_TAG_ALNUM;
				memcpy(k, s, p - s);
				k += p - s;
			}
			if (p == pre_end)
				break;
			p++;				/* the '.' */
		}
	}

	/* build metadata: identifiers of [0-9A-Za-z-], leading zeros allowed */
	if (build != NULL)
	{
		if (build == end)
		{
			SetError(err, SEMVER_ERR_BUILD_EMPTY, build, 0);
			goto fail;
		}
		p = build;
		for (;;)
		{
			const char *s = p;

			while (p < end && *p != '.')
			{
				if (!IsIdentChar(*p))
				{
					while (p < end && *p != '.')
						p++;
					SetError(err, SEMVER_ERR_BUILD_BAD_CHAR, s, p - s);
					goto fail;
				}
				p++;
			}
			if (p == s)
			{
				SetError(err, SEMVER_ERR_BUILD_EMPTY_IDENT, build, end - build);
				goto fail;
			}
			if (p == end)
				break;
			p++;
		}
	}

	/* well formed: now a number too large is the error */
	if (overflow.kind != SEMVER_OK)
	{
		*err = overflow;
		goto fail;
	}

	/* keylen as unsigned LEB128, then the key moved right behind it */
	keylen = k - key;
	{
		uint32		v = (uint32) keylen;

		lenlen = 0;
		do
		{
			uint8		b = v & 0x7F;

			v >>= 7;
			payload[lenlen++] = b | (v ? 0x80 : 0);
		} while (v);
	}
	memmove(payload + lenlen, key, keylen);
	k = payload + lenlen + keylen;
	if (build != NULL)
	{
		memcpy(k, build, end - build);
		k += end - build;
	}
	SET_VARSIZE(result, k - (uint8 *) result);
	return result;

fail:
	pfree(result);
	return NULL;
}

/* The errdetail sentence for a syntax error. */
static char *
SyntaxDetail(const SemverError *err, const char *what)
{
	switch (err->kind)
	{
		case SEMVER_ERR_CORE_COUNT:
			if (err->whatlen == 0)
				return pstrdup("Version core (major.minor.patch) is missing.");
			return psprintf("Version core \"%s\" does not have three dot-separated numbers.", what);
		case SEMVER_ERR_CORE_EMPTY:
			return psprintf("%s is empty.", CoreName[err->part]);
		case SEMVER_ERR_CORE_NOT_NUMBER:
			return psprintf("%s \"%s\" is not a non-negative integer.", CoreName[err->part], what);
		case SEMVER_ERR_LEADING_ZERO:
			return psprintf("Numeric identifier \"%s\" has a leading zero.", what);
		case SEMVER_ERR_PRE_EMPTY:
			return pstrdup("Pre-release after \"-\" is empty.");
		case SEMVER_ERR_PRE_EMPTY_IDENT:
			return psprintf("Pre-release \"%s\" has an empty identifier.", what);
		case SEMVER_ERR_PRE_BAD_CHAR:
			return psprintf("Pre-release identifier \"%s\" has a character other than 0-9, A-Z, a-z and \"-\".", what);
		case SEMVER_ERR_BUILD_EMPTY:
			return pstrdup("Build metadata after \"+\" is empty.");
		case SEMVER_ERR_BUILD_EMPTY_IDENT:
			return psprintf("Build metadata \"%s\" has an empty identifier.", what);
		case SEMVER_ERR_BUILD_BAD_CHAR:
			return psprintf("Build identifier \"%s\" has a character other than 0-9, A-Z, a-z and \"-\".", what);
		case SEMVER_ERR_OVERFLOW:
		case SEMVER_OK:
			break;
	}
	elog(ERROR, "unexpected semver parse error %d", (int) err->kind);
	return NULL;				/* keep compiler quiet */
}

/*
 * Raise the error a failed SemverParse described. On PostgreSQL 16 and
 * later a soft-error context (pg_input_is_valid) receives it instead, and
 * the caller returns NULL.
 */
#if PG_VERSION_NUM >= 160000
#define SEMVER_ERROR(ctx, ...) errsave(ctx, __VA_ARGS__)
#else
#define SEMVER_ERROR(ctx, ...) ereport(ERROR, __VA_ARGS__)
#endif
void
SemverReportError(const char *str, int len, const SemverError *err, Node *escontext)
{
	char	   *input = pnstrdup(str, len);
	char	   *what = pnstrdup(err->what, err->whatlen);

	if (err->kind == SEMVER_ERR_OVERFLOW)
	{
		SEMVER_ERROR(escontext,
					 (errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
					  errmsg("value \"%s\" is out of range for type semver", input),
					  errdetail("Numeric identifier \"%s\" is greater than 9223372036854775807.", what),
					  errhint("tforge.semver stores numeric identifiers up to 2^63-1.")));
		return;
	}
	SEMVER_ERROR(escontext,
			(errcode(ERRCODE_INVALID_TEXT_REPRESENTATION),
			 errmsg("invalid input syntax for type semver: \"%s\"", input),
			 errdetail_internal("%s", SyntaxDetail(err, what)),
			 err->kind == SEMVER_ERR_CORE_COUNT ?
			 errhint("A semantic version looks like 1.2.3, 1.2.3-rc.1 or 1.2.3+build.5.") : 0));
}

/* Locate the key and the build metadata inside a (detoasted) semver. */
void
SemverGetParts(const struct varlena *v, SemverParts *parts)
{
	const uint8 *p = (const uint8 *) VARDATA_ANY(v);
	const uint8 *end = p + VARSIZE_ANY_EXHDR(v);
	uint32		keylen = 0;
	int			shift = 0;

	while (p < end)
	{
		uint8		b = *p++;

		keylen |= (uint32) (b & 0x7F) << shift;
		if (!(b & 0x80))
			break;
		shift += 7;
		if (shift > 28)
			break;
	}
	if (keylen > (uint32) (end - p))
		elog(ERROR, "corrupt semver value");
	parts->key = p;
	parts->keylen = keylen;
	parts->build = (const char *) p + keylen;
	parts->buildlen = end - (p + keylen);
}

/* Append one number's decimal digits. */
static void
AppendNumber(StringInfo buf, uint64 n)
{
	char		digits[24];
	int			len = pg_ulltoa_n(n, digits);

	appendBinaryStringInfo(buf, digits, len);
}

/* Decode the key (and build) back into SemVer text. */
static void
SemverToText(const struct varlena *v, StringInfo buf, bool with_core,
			 bool with_pre, bool with_build)
{
	SemverParts parts;
	const uint8 *p;
	const uint8 *end;
	int			i;
	bool		first = true;

	SemverGetParts(v, &parts);
	p = parts.key;
	end = p + parts.keylen;
	for (i = 0; i < 3; i++)
	{
		uint64		n;
		int			used = SemverDecodeNumber(p, end, &n);

		if (used == 0)
			elog(ERROR, "corrupt semver value");
		p += used;
		if (with_core)
		{
			if (i > 0)
				appendStringInfoChar(buf, '.');
			AppendNumber(buf, n);
		}
	}
	if (p < end && *p == SEMVER_TAG_RELEASE)
		p++;
	while (p < end)
	{
		uint8		tag = *p++;

		/* prerelease() shows the identifiers without the leading '-' */
		if (with_pre && !first)
			appendStringInfoChar(buf, '.');
		else if (with_pre && with_core)
			appendStringInfoChar(buf, '-');
		first = false;
		if (tag == SEMVER_TAG_NUMERIC)
		{
			uint64		n;
			int			used = SemverDecodeNumber(p, end, &n);

			if (used == 0)
				elog(ERROR, "corrupt semver value");
			p += used;
			if (with_pre)
				AppendNumber(buf, n);
		}
		else if (tag == SEMVER_TAG_ALNUM)
		{
			const uint8 *s = p;

			while (p < end && *p > SEMVER_TAG_RELEASE)
				p++;
			if (with_pre)
				appendBinaryStringInfo(buf, (const char *) s, p - s);
		}
		else
			elog(ERROR, "corrupt semver value");
	}
	if (with_build && parts.buildlen > 0)
	{
		if (with_core)
			appendStringInfoChar(buf, '+');
		appendBinaryStringInfo(buf, parts.build, parts.buildlen);
	}
}

PG_FUNCTION_INFO_V1(semver_in);
Datum
semver_in(PG_FUNCTION_ARGS)
{
	char	   *str = PG_GETARG_CSTRING(0);
	int			len = strlen(str);
	SemverError err;
	struct varlena *result = SemverParse(str, len, &err);

	if (result == NULL)
	{
		SemverReportError(str, len, &err, fcinfo->context);
		PG_RETURN_NULL();		/* soft error (PostgreSQL 16+) */
	}
	PG_RETURN_POINTER(result);
}

PG_FUNCTION_INFO_V1(semver_out);
Datum
semver_out(PG_FUNCTION_ARGS)
{
	struct varlena *v = PG_GETARG_VARLENA_PP(0);
	StringInfoData buf;

	initStringInfo(&buf);
	SemverToText(v, &buf, true, true, true);
	PG_RETURN_CSTRING(buf.data);
}

/*
 * Binary input: a format byte, then the text form, validated by the same
 * parser as text input so a client cannot store a value text input refuses.
 */
PG_FUNCTION_INFO_V1(semver_recv);
Datum
semver_recv(PG_FUNCTION_ARGS)
{
	StringInfo	buf = (StringInfo) PG_GETARG_POINTER(0);
	int			format = pq_getmsgbyte(buf);
	char	   *str;
	int			len;
	SemverError err;
	struct varlena *result;

	if (format != SEMVER_SEND_FORMAT)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_BINARY_REPRESENTATION),
				 errmsg("unsupported binary format version %d for type semver", format),
				 errhint("This tforge reads format version %d.", SEMVER_SEND_FORMAT)));
	/* as for text: client encoding to server encoding, verified (no NUL) */
	str = pq_getmsgtext(buf, buf->len - buf->cursor, &len);
	result = SemverParse(str, len, &err);
	if (result == NULL)
		SemverReportError(str, len, &err, NULL);
	PG_RETURN_POINTER(result);
}

PG_FUNCTION_INFO_V1(semver_send);
Datum
semver_send(PG_FUNCTION_ARGS)
{
	struct varlena *v = PG_GETARG_VARLENA_PP(0);
	StringInfoData text;
	StringInfoData buf;

	initStringInfo(&text);
	SemverToText(v, &text, true, true, true);
	pq_begintypsend(&buf);
	pq_sendbyte(&buf, SEMVER_SEND_FORMAT);
	pq_sendtext(&buf, text.data, text.len);
	PG_RETURN_BYTEA_P(pq_endtypsend(&buf));
}

/* The seed's parse_version: NULL instead of an error for invalid text. */
PG_FUNCTION_INFO_V1(semver_to_semver);
Datum
semver_to_semver(PG_FUNCTION_ARGS)
{
	text	   *t = PG_GETARG_TEXT_PP(0);
	SemverError err;
	struct varlena *result = SemverParse(VARDATA_ANY(t), VARSIZE_ANY_EXHDR(t), &err);

	if (result == NULL)
		PG_RETURN_NULL();
	PG_RETURN_POINTER(result);
}

PG_FUNCTION_INFO_V1(semver_is_semver);
Datum
semver_is_semver(PG_FUNCTION_ARGS)
{
	text	   *t = PG_GETARG_TEXT_PP(0);
	SemverError err;
	struct varlena *result = SemverParse(VARDATA_ANY(t), VARSIZE_ANY_EXHDR(t), &err);

	if (result != NULL)
		pfree(result);
	PG_RETURN_BOOL(result != NULL);
}

/* Number i (0 major, 1 minor, 2 patch) of the version core. */
static int64
CoreNumber(const struct varlena *v, int which)
{
	SemverParts parts;
	const uint8 *p;
	const uint8 *end;
	uint64		n = 0;
	int			i;

	SemverGetParts(v, &parts);
	p = parts.key;
	end = p + parts.keylen;
	for (i = 0; i <= which; i++)
	{
		int			used = SemverDecodeNumber(p, end, &n);

		if (used == 0)
			elog(ERROR, "corrupt semver value");
		p += used;
	}
	return (int64) n;
}

PG_FUNCTION_INFO_V1(semver_major);
Datum
semver_major(PG_FUNCTION_ARGS)
{
	PG_RETURN_INT64(CoreNumber(PG_GETARG_VARLENA_PP(0), 0));
}

PG_FUNCTION_INFO_V1(semver_minor);
Datum
semver_minor(PG_FUNCTION_ARGS)
{
	PG_RETURN_INT64(CoreNumber(PG_GETARG_VARLENA_PP(0), 1));
}

PG_FUNCTION_INFO_V1(semver_patch);
Datum
semver_patch(PG_FUNCTION_ARGS)
{
	PG_RETURN_INT64(CoreNumber(PG_GETARG_VARLENA_PP(0), 2));
}

/* Pre-release identifiers without the '-', '' for a release. */
PG_FUNCTION_INFO_V1(semver_prerelease);
Datum
semver_prerelease(PG_FUNCTION_ARGS)
{
	StringInfoData buf;

	initStringInfo(&buf);
	SemverToText(PG_GETARG_VARLENA_PP(0), &buf, false, true, false);
	PG_RETURN_TEXT_P(cstring_to_text_with_len(buf.data, buf.len));
}

/* Build metadata without the '+', '' when there is none. */
PG_FUNCTION_INFO_V1(semver_build);
Datum
semver_build(PG_FUNCTION_ARGS)
{
	SemverParts parts;

	SemverGetParts(PG_GETARG_VARLENA_PP(0), &parts);
	PG_RETURN_TEXT_P(cstring_to_text_with_len(parts.build, parts.buildlen));
}
