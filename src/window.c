/*
 * window.c: tforge.window_counter, per-minute and per-hour event counts.
 *
 * Buckets are aligned to clock minutes and hours (UTC, counted from
 * 2000-01-01 00:00). A counter retains the 60 minute buckets and the 168 hour
 * buckets that end with the bucket of its newest event ("head"); the head
 * only moves forward. An event newer than the head advances it, zeroing the
 * buckets that roll out; an older event lands in its bucket if that bucket is
 * still retained and otherwise only in the total. So a clock that moves
 * backwards never corrupts a bucket, and a counter is a function of the set
 * of its events alone: adding them in any order, or merging counters of any
 * split of them, gives the same counter.
 *
 * window_count(c, w, at) counts the events of the last N buckets ending with
 * the bucket of at: minute buckets for N = w / 1 minute <= 60, hour buckets
 * for N = w / 1 hour <= 168. That is exact for 1h, 24h, 7d and any whole
 * number of buckets, as long as those buckets are retained.
 */
#include "postgres.h"

#include "common/int.h"
#include "fmgr.h"
#include "libpq/pqformat.h"
#include "utils/builtins.h"
#include "utils/timestamp.h"

#include "decay.h"
#include "window.h"

#define WINDOW_BINARY_VERSION 1
/* a window_agg transition state: the header, then a WindowState (see window_agg_step) */
#define WINDOW_RING_VERSION 2
#define USECS_PER_MINUTE_I64 INT64CONST(60000000)

/* floor(a / b) for b > 0 */
static inline int64
FloorDiv(int64 a, int64 b)
{
	int64		q = a / b;

	return (a % b != 0 && a < 0) ? q - 1 : q;
}

/* a mod b in [0, b) */
static inline int
RingIndex(int64 a, int64 b)
{
	int64		r = a % b;

	return (int) (r < 0 ? r + b : r);
}

static inline int64
MinuteOf(TimestampTz at)
{
	return FloorDiv(at, USECS_PER_MINUTE_I64);
}

static inline int64
HourOfMinute(int64 minute)
{
	return FloorDiv(minute, 60);
}

static void
WindowInit(WindowState *w)
{
	memset(w, 0, sizeof(WindowState));
	w->head_minute = WINDOW_EMPTY_HEAD;
}

static void
CheckedAdd(int64 *dst, int64 n)
{
	if (pg_add_s64_overflow(*dst, n, dst))
		ereport(ERROR,
				(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
				 errmsg("window counter overflows bigint")));
}

/* Move the head forward to minute m, zeroing the buckets that roll out. */
static void
WindowAdvance(WindowState *w, int64 m)
{
	int64		b;

	if (w->head_minute == WINDOW_EMPTY_HEAD)
	{
		w->head_minute = m;
		return;
	}
	if (m <= w->head_minute)
		return;

	if (m - w->head_minute >= WINDOW_MINUTES)
		memset(w->minutes, 0, sizeof(w->minutes));
	else
		for (b = w->head_minute + 1; b <= m; b++)
			w->minutes[RingIndex(b, WINDOW_MINUTES)] = 0;

	{
		int64		old_hour = HourOfMinute(w->head_minute);
		int64		new_hour = HourOfMinute(m);

		if (new_hour - old_hour >= WINDOW_HOURS)
			memset(w->hours, 0, sizeof(w->hours));
		else
			for (b = old_hour + 1; b <= new_hour; b++)
				w->hours[RingIndex(b, WINDOW_HOURS)] = 0;
	}
	w->head_minute = m;
}

/* Count n events in minute m; the head must already be >= m. */
static void
WindowCount(WindowState *w, int64 m, int64 n)
{
	int64		h = HourOfMinute(m);

	if (m > w->head_minute - WINDOW_MINUTES)
		CheckedAdd(&w->minutes[RingIndex(m, WINDOW_MINUTES)], n);
	if (h > HourOfMinute(w->head_minute) - WINDOW_HOURS)
		CheckedAdd(&w->hours[RingIndex(h, WINDOW_HOURS)], n);
	CheckedAdd(&w->total, n);
}

static void
WindowAddEvents(WindowState *w, TimestampTz at, int64 n)
{
	int64		m;

	CheckFiniteTimestamp(at, "event time");
	if (n < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("event count must be >= 0, got %lld", (long long) n)));
	if (n == 0)
		return;
	m = MinuteOf(at);
	WindowAdvance(w, m);
	WindowCount(w, m, n);
}

/* Fold src into dst: both advanced to the later head, retained buckets summed. */
static void
WindowMergeInto(WindowState *dst, const WindowState *src)
{
	int			age;

	if (src->head_minute == WINDOW_EMPTY_HEAD)
		return;
	WindowAdvance(dst, src->head_minute);
	for (age = 0; age < WINDOW_MINUTES; age++)
	{
		int64		m = src->head_minute - age;
		int64		c = src->minutes[RingIndex(m, WINDOW_MINUTES)];

		if (c != 0 && m > dst->head_minute - WINDOW_MINUTES)
			CheckedAdd(&dst->minutes[RingIndex(m, WINDOW_MINUTES)], c);
	}
	for (age = 0; age < WINDOW_HOURS; age++)
	{
		int64		h = HourOfMinute(src->head_minute) - age;
		int64		c = src->hours[RingIndex(h, WINDOW_HOURS)];

		if (c != 0 && h > HourOfMinute(dst->head_minute) - WINDOW_HOURS)
			CheckedAdd(&dst->hours[RingIndex(h, WINDOW_HOURS)], c);
	}
	CheckedAdd(&dst->total, src->total);
}

/*
 * Validation shared by the text and binary input functions: counts are
 * non-negative, the newest minute holds an event (it defines the head), the
 * minute buckets of an hour never exceed that hour's bucket, and the hour
 * buckets never exceed the total. Returns a problem description or NULL.
 */
static const char *
WindowProblem(const WindowState *w)
{
	int64		hour_sum = 0;
	int			age;

	if (w->total < 0)
		return "The total must not be negative.";
	if (w->head_minute == WINDOW_EMPTY_HEAD)
		return w->total == 0 ? NULL : "A counter without buckets must have total 0.";
	if (w->minutes[RingIndex(w->head_minute, WINDOW_MINUTES)] <= 0)
		return "The newest minute bucket must count at least one event.";
	for (age = 0; age < WINDOW_HOURS; age++)
	{
		int64		h = HourOfMinute(w->head_minute) - age;
		int64		c = w->hours[RingIndex(h, WINDOW_HOURS)];
		int64		minute_sum = 0;
		int			ma;

		if (c < 0)
			return "Bucket counts must not be negative.";
		for (ma = 0; ma < WINDOW_MINUTES; ma++)
		{
			int64		m = w->head_minute - ma;

			if (w->minutes[RingIndex(m, WINDOW_MINUTES)] < 0)
				return "Bucket counts must not be negative.";
			if (HourOfMinute(m) == h &&
				pg_add_s64_overflow(minute_sum, w->minutes[RingIndex(m, WINDOW_MINUTES)], &minute_sum))
				return "Bucket counts overflow bigint.";
		}
		if (minute_sum > c)
			return "The minute buckets of an hour count more events than the hour bucket.";
		if (pg_add_s64_overflow(hour_sum, c, &hour_sum))
			return "Bucket counts overflow bigint.";
	}
	if (hour_sum > w->total)
		return "The hour buckets count more events than the total.";
	return NULL;
}

/* Expand the on-disk form. */
static void
WindowDecode(const WindowCounter *c, WindowState *w)
{
	int			age;

	if (c->version == WINDOW_RING_VERSION)
	{
		/* a window_agg transition state (see window_agg_step) */
		memcpy(w, &c->total, sizeof(WindowState));
		return;
	}
	WindowInit(w);
	w->total = c->total;
	w->head_minute = c->head_minute;
	for (age = 0; age < c->nminutes; age++)
		w->minutes[RingIndex(c->head_minute - age, WINDOW_MINUTES)] = c->counts[age];
	for (age = 0; age < c->nhours; age++)
		w->hours[RingIndex(HourOfMinute(c->head_minute) - age, WINDOW_HOURS)] =
			c->counts[c->nminutes + age];
}

/* The on-disk form: buckets newest first, up to the oldest non-zero one. */
static WindowCounter *
WindowEncode(const WindowState *w)
{
	WindowCounter *c;
	int64		mins[WINDOW_MINUTES];
	int64		hrs[WINDOW_HOURS];
	int			nm = 0;
	int			nh = 0;
	int			age;
	Size		size;

	if (w->head_minute != WINDOW_EMPTY_HEAD)
	{
		for (age = 0; age < WINDOW_MINUTES; age++)
		{
			mins[age] = w->minutes[RingIndex(w->head_minute - age, WINDOW_MINUTES)];
			if (mins[age] != 0)
				nm = age + 1;
		}
		for (age = 0; age < WINDOW_HOURS; age++)
		{
			hrs[age] = w->hours[RingIndex(HourOfMinute(w->head_minute) - age, WINDOW_HOURS)];
			if (hrs[age] != 0)
				nh = age + 1;
		}
	}
	size = offsetof(WindowCounter, counts) + sizeof(int64) * (nm + nh);
	c = palloc0(size);
	SET_VARSIZE(c, size);
	c->version = WINDOW_BINARY_VERSION;
	c->nminutes = nm;
	c->nhours = nh;
	c->total = w->total;
	c->head_minute = w->head_minute;
	if (nm > 0)
		memcpy(c->counts, mins, sizeof(int64) * nm);
	if (nh > 0)
		memcpy(c->counts + nm, hrs, sizeof(int64) * nh);
	return c;
}

/* c in the compact stored form (a window_agg transition state is expanded). */
static WindowCounter *
WindowCompact(WindowCounter *c)
{
	WindowState w;

	if (c->version == WINDOW_BINARY_VERSION)
		return c;
	WindowDecode(c, &w);
	return WindowEncode(&w);
}

static void pg_attribute_noreturn()
WindowSyntaxError(const char *input, const char *detail)
{
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_TEXT_REPRESENTATION),
			 errmsg("invalid input syntax for type window_counter: \"%s\"", input),
			 errdetail("%s", detail),
			 errhint("The format is total=N or total=N minute=M m[newest,...] h[newest,...].")));
}

/* Parse a decimal int64 at *p; false on no digits or overflow. */
static bool
ParseInt64(const char **p, int64 *result)
{
	const char *s = *p;
	bool		neg = false;
	int64		v = 0;

	if (*s == '-' || *s == '+')
		neg = (*s++ == '-');
	if (!isdigit((unsigned char) *s))
		return false;
	while (isdigit((unsigned char) *s))
	{
		if (pg_mul_s64_overflow(v, 10, &v) ||
			pg_sub_s64_overflow(v, *s - '0', &v))
			return false;
		s++;
	}
	if (!neg)
	{
		if (v == PG_INT64_MIN)
			return false;
		v = -v;
	}
	*result = v;
	*p = s;
	return true;
}

static bool
Expect(const char **p, const char *word)
{
	size_t		len = strlen(word);

	while (isspace((unsigned char) **p))
		(*p)++;
	if (strncmp(*p, word, len) != 0)
		return false;
	*p += len;
	return true;
}

/* "[a,b,...]" into out (newest first); returns the number of values or -1. */
static int
ParseList(const char **p, const char *prefix, int64 *out, int max)
{
	int			n = 0;

	if (!Expect(p, prefix) || !Expect(p, "["))
		return -1;
	if (Expect(p, "]"))
		return 0;
	for (;;)
	{
		if (n >= max)
			return -1;
		while (isspace((unsigned char) **p))
			(*p)++;
		if (!ParseInt64(p, &out[n++]))
			return -1;
		if (Expect(p, "]"))
			return n;
		if (!Expect(p, ","))
			return -1;
	}
}

/* Text form: total=N [minute=M m[newest..oldest] h[newest..oldest]] */
PG_FUNCTION_INFO_V1(window_counter_in);
Datum
window_counter_in(PG_FUNCTION_ARGS)
{
	char	   *input = PG_GETARG_CSTRING(0);
	const char *p = input;
	WindowState w;
	int64		mins[WINDOW_MINUTES];
	int64		hrs[WINDOW_HOURS];
	int			nm;
	int			nh;
	int			age;
	const char *problem;

	WindowInit(&w);
	if (!Expect(&p, "total=") || !ParseInt64(&p, &w.total))
		WindowSyntaxError(input, "Expected total= and a whole number.");
	if (Expect(&p, "minute="))
	{
		if (!ParseInt64(&p, &w.head_minute) || w.head_minute == WINDOW_EMPTY_HEAD ||
			w.head_minute > MinuteOf(END_TIMESTAMP) || w.head_minute < MinuteOf(MIN_TIMESTAMP))
			WindowSyntaxError(input, "The minute is not a valid minute number.");
		if ((nm = ParseList(&p, "m", mins, WINDOW_MINUTES)) < 0)
			WindowSyntaxError(input, "Expected m[...] with at most 60 whole numbers.");
		if ((nh = ParseList(&p, "h", hrs, WINDOW_HOURS)) < 0)
			WindowSyntaxError(input, "Expected h[...] with at most 168 whole numbers.");
		for (age = 0; age < nm; age++)
			w.minutes[RingIndex(w.head_minute - age, WINDOW_MINUTES)] = mins[age];
		for (age = 0; age < nh; age++)
			w.hours[RingIndex(HourOfMinute(w.head_minute) - age, WINDOW_HOURS)] = hrs[age];
	}
	while (isspace((unsigned char) *p))
		p++;
	if (*p != '\0')
		WindowSyntaxError(input, "Junk after the counter.");
	if ((problem = WindowProblem(&w)) != NULL)
		WindowSyntaxError(input, problem);
	PG_RETURN_POINTER(WindowEncode(&w));
}

PG_FUNCTION_INFO_V1(window_counter_out);
Datum
window_counter_out(PG_FUNCTION_ARGS)
{
	WindowCounter *c = WindowCompact(PG_GETARG_WINDOW_COUNTER_P(0));
	StringInfoData buf;
	int			i;

	initStringInfo(&buf);
	appendStringInfo(&buf, "total=" INT64_FORMAT, c->total);
	if (c->head_minute != WINDOW_EMPTY_HEAD)
	{
		appendStringInfo(&buf, " minute=" INT64_FORMAT " m[", c->head_minute);
		for (i = 0; i < c->nminutes; i++)
			appendStringInfo(&buf, "%s" INT64_FORMAT, i ? "," : "", c->counts[i]);
		appendStringInfoString(&buf, "] h[");
		for (i = 0; i < c->nhours; i++)
			appendStringInfo(&buf, "%s" INT64_FORMAT, i ? "," : "", c->counts[c->nminutes + i]);
		appendStringInfoChar(&buf, ']');
	}
	PG_RETURN_CSTRING(buf.data);
}

/* Binary form: version byte, int8 total, int8 head minute, byte nm, byte nh, int8 counts */
PG_FUNCTION_INFO_V1(window_counter_recv);
Datum
window_counter_recv(PG_FUNCTION_ARGS)
{
	StringInfo	buf = (StringInfo) PG_GETARG_POINTER(0);
	WindowState w;
	int			version = pq_getmsgbyte(buf);
	int			nm;
	int			nh;
	int			age;
	const char *problem;

	if (version != WINDOW_BINARY_VERSION)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_BINARY_REPRESENTATION),
				 errmsg("unsupported window_counter binary format version %d", version)));
	WindowInit(&w);
	w.total = pq_getmsgint64(buf);
	w.head_minute = pq_getmsgint64(buf);
	nm = pq_getmsgbyte(buf);
	nh = pq_getmsgbyte(buf);
	if (nm > WINDOW_MINUTES || nh > WINDOW_HOURS ||
		(w.head_minute == WINDOW_EMPTY_HEAD && (nm | nh) != 0) ||
		(w.head_minute != WINDOW_EMPTY_HEAD &&
		 (w.head_minute > MinuteOf(END_TIMESTAMP) || w.head_minute < MinuteOf(MIN_TIMESTAMP))))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_BINARY_REPRESENTATION),
				 errmsg("invalid external window_counter value"),
				 errdetail("Bad head minute or bucket counts.")));
	for (age = 0; age < nm; age++)
		w.minutes[RingIndex(w.head_minute - age, WINDOW_MINUTES)] = pq_getmsgint64(buf);
	for (age = 0; age < nh; age++)
		w.hours[RingIndex(HourOfMinute(w.head_minute) - age, WINDOW_HOURS)] = pq_getmsgint64(buf);
	if ((problem = WindowProblem(&w)) != NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_BINARY_REPRESENTATION),
				 errmsg("invalid external window_counter value"),
				 errdetail("%s", problem)));
	PG_RETURN_POINTER(WindowEncode(&w));
}

PG_FUNCTION_INFO_V1(window_counter_send);
Datum
window_counter_send(PG_FUNCTION_ARGS)
{
	WindowCounter *c = WindowCompact(PG_GETARG_WINDOW_COUNTER_P(0));
	StringInfoData buf;
	int			i;

	pq_begintypsend(&buf);
	pq_sendbyte(&buf, WINDOW_BINARY_VERSION);
	pq_sendint64(&buf, c->total);
	pq_sendint64(&buf, c->head_minute);
	pq_sendbyte(&buf, c->nminutes);
	pq_sendbyte(&buf, c->nhours);
	for (i = 0; i < c->nminutes + c->nhours; i++)
		pq_sendint64(&buf, c->counts[i]);
	PG_RETURN_BYTEA_P(pq_endtypsend(&buf));
}

PG_FUNCTION_INFO_V1(window_empty);
Datum
window_empty(PG_FUNCTION_ARGS)
{
	WindowState w;

	WindowInit(&w);
	PG_RETURN_POINTER(WindowEncode(&w));
}

PG_FUNCTION_INFO_V1(window_add);
Datum
window_add(PG_FUNCTION_ARGS)
{
	WindowState w;

	WindowDecode(PG_GETARG_WINDOW_COUNTER_P(0), &w);
	WindowAddEvents(&w, PG_GETARG_TIMESTAMPTZ(1), PG_GETARG_INT64(2));
	PG_RETURN_POINTER(WindowEncode(&w));
}

PG_FUNCTION_INFO_V1(window_merge);
Datum
window_merge(PG_FUNCTION_ARGS)
{
	WindowState a;
	WindowState b;

	WindowDecode(PG_GETARG_WINDOW_COUNTER_P(0), &a);
	WindowDecode(PG_GETARG_WINDOW_COUNTER_P(1), &b);
	WindowMergeInto(&a, &b);
	PG_RETURN_POINTER(WindowEncode(&a));
}

/*
 * Buckets that make up a window: sets *per_minute and returns N, or raises
 * 22023 when the window is not a whole number of retained buckets.
 */
static int64
WindowBuckets(const Interval *span, bool *per_minute)
{
	int64		us = IntervalMicroseconds(span, "window");

	if (us > 0 && us % USECS_PER_MINUTE_I64 == 0 && us / USECS_PER_MINUTE_I64 <= WINDOW_MINUTES)
	{
		*per_minute = true;
		return us / USECS_PER_MINUTE_I64;
	}
	if (us > 0 && us % USECS_PER_HOUR == 0 && us / USECS_PER_HOUR <= WINDOW_HOURS)
	{
		*per_minute = false;
		return us / USECS_PER_HOUR;
	}
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("invalid window \"%s\"",
					DatumGetCString(DirectFunctionCall1(interval_out, PointerGetDatum(span)))),
			 errhint("A window is 1 to 60 whole minutes or 1 to 168 whole hours, e.g. '1 hour', '24 hours', '7 days'.")));
	return 0;					/* keep compiler quiet */
}

/* Events in the window of the given length ending with the bucket of at. */
static int64
WindowCountAt(const WindowCounter *c, const Interval *span, TimestampTz at)
{
	WindowState w;
	bool		per_minute;
	int64		n = WindowBuckets(span, &per_minute);
	int64		last;
	int64		head;
	int64		retained;
	int64		b;
	int64		sum = 0;

	CheckFiniteTimestamp(at, "time");
	if (c->head_minute == WINDOW_EMPTY_HEAD)
		return 0;
	WindowDecode(c, &w);
	last = per_minute ? MinuteOf(at) : HourOfMinute(MinuteOf(at));
	head = per_minute ? w.head_minute : HourOfMinute(w.head_minute);
	retained = per_minute ? WINDOW_MINUTES : WINDOW_HOURS;

	if (last - n + 1 <= head - retained)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("window of %lld %s ending at \"%s\" reaches before the counter's oldest bucket",
						(long long) n, per_minute ? "minutes" : "hours",
						DatumGetCString(DirectFunctionCall1(timestamptz_out, TimestampTzGetDatum(at)))),
				 errdetail("The counter keeps %lld %s buckets up to its newest event.",
						   (long long) retained, per_minute ? "minute" : "hour"),
				 errhint("Ask for a later time or a shorter window.")));

	for (b = Min(last, head); b > last - n; b--)
		sum += per_minute ? w.minutes[RingIndex(b, WINDOW_MINUTES)]
			: w.hours[RingIndex(b, WINDOW_HOURS)];
	return sum;
}

PG_FUNCTION_INFO_V1(window_count);
Datum
window_count(PG_FUNCTION_ARGS)
{
	PG_RETURN_INT64(WindowCountAt(PG_GETARG_WINDOW_COUNTER_P(0),
								  PG_GETARG_INTERVAL_P(1),
								  PG_GETARG_TIMESTAMPTZ(2)));
}

/* velocity = count / window length in seconds (events per second) */
PG_FUNCTION_INFO_V1(window_velocity);
Datum
window_velocity(PG_FUNCTION_ARGS)
{
	Interval   *span = PG_GETARG_INTERVAL_P(1);
	int64		count = WindowCountAt(PG_GETARG_WINDOW_COUNTER_P(0), span,
									  PG_GETARG_TIMESTAMPTZ(2));

	PG_RETURN_FLOAT8((double) count / ((double) IntervalMicroseconds(span, "window") / 1.0e6));
}

PG_FUNCTION_INFO_V1(window_total);
Datum
window_total(PG_FUNCTION_ARGS)
{
	PG_RETURN_INT64(PG_GETARG_WINDOW_COUNTER_P(0)->total);
}

/* Check a window length, returning it; used to validate a signal type's windows. */
PG_FUNCTION_INFO_V1(window_check);
Datum
window_check(PG_FUNCTION_ARGS)
{
	bool		per_minute;

	(void) WindowBuckets(PG_GETARG_INTERVAL_P(0), &per_minute);
	PG_RETURN_DATUM(PG_GETARG_DATUM(0));
}

/* Newest event's minute as a timestamp, NULL for an empty counter. */
PG_FUNCTION_INFO_V1(window_last_minute);
Datum
window_last_minute(PG_FUNCTION_ARGS)
{
	WindowCounter *c = PG_GETARG_WINDOW_COUNTER_P(0);

	if (c->head_minute == WINDOW_EMPTY_HEAD)
		PG_RETURN_NULL();
	PG_RETURN_TIMESTAMPTZ(c->head_minute * USECS_PER_MINUTE_I64);
}

/*
 * window_agg(at [, n]): the state is an expanded WindowState in the
 * aggregate context; serialized for parallel workers as the on-disk form.
 */
static WindowState *
WindowAggState(FunctionCallInfo fcinfo)
{
	MemoryContext aggcontext;
	WindowState *state;

	if (!AggCheckCallContext(fcinfo, &aggcontext))
	{
		/* a plain call: the state is the caller's, so work on a copy */
		state = palloc(sizeof(WindowState));
		if (PG_ARGISNULL(0))
			WindowInit(state);
		else
			memcpy(state, PG_GETARG_POINTER(0), sizeof(WindowState));
		return state;
	}
	if (!PG_ARGISNULL(0))
		return (WindowState *) PG_GETARG_POINTER(0);
	state = MemoryContextAlloc(aggcontext, sizeof(WindowState));
	WindowInit(state);
	return state;
}

PG_FUNCTION_INFO_V1(window_agg_trans);
Datum
window_agg_trans(PG_FUNCTION_ARGS)
{
	WindowState *state;
	int64		n = 1;

	if (PG_NARGS() > 2)
	{
		if (PG_ARGISNULL(2))
			goto skip;
		n = PG_GETARG_INT64(2);
	}
	if (PG_ARGISNULL(1))
		goto skip;
	state = WindowAggState(fcinfo);
	WindowAddEvents(state, PG_GETARG_TIMESTAMPTZ(1), n);
	PG_RETURN_POINTER(state);

skip:
	if (PG_ARGISNULL(0))
		PG_RETURN_NULL();
	PG_RETURN_POINTER(PG_GETARG_POINTER(0));
}

PG_FUNCTION_INFO_V1(window_agg_combine);
Datum
window_agg_combine(PG_FUNCTION_ARGS)
{
	WindowState *state;

	if (PG_ARGISNULL(1))
	{
		if (PG_ARGISNULL(0))
			PG_RETURN_NULL();
		PG_RETURN_POINTER(PG_GETARG_POINTER(0));
	}
	state = WindowAggState(fcinfo);
	WindowMergeInto(state, (WindowState *) PG_GETARG_POINTER(1));
	PG_RETURN_POINTER(state);
}

PG_FUNCTION_INFO_V1(window_agg_serial);
Datum
window_agg_serial(PG_FUNCTION_ARGS)
{
	PG_RETURN_POINTER(WindowEncode((WindowState *) PG_GETARG_POINTER(0)));
}

PG_FUNCTION_INFO_V1(window_agg_deserial);
Datum
window_agg_deserial(PG_FUNCTION_ARGS)
{
	WindowState *state = palloc(sizeof(WindowState));

	WindowDecode((WindowCounter *) PG_DETOAST_DATUM(PG_GETARG_DATUM(0)), state);
	PG_RETURN_POINTER(state);
}

PG_FUNCTION_INFO_V1(window_agg_final);
Datum
window_agg_final(PG_FUNCTION_ARGS)
{
	if (PG_ARGISNULL(0))
		PG_RETURN_NULL();
	PG_RETURN_POINTER(WindowEncode((WindowState *) PG_GETARG_POINTER(0)));
}

/*
 * window_agg(at [, n]) since 0.2.0: the state is a window_counter, not
 * internal, so that a sharded engine (Citus) can run it as partial
 * aggregates on the shards and combine them (Citus refuses pseudo-type
 * states). To stay as fast as an internal state, the state this aggregate
 * makes is a window_counter of format WINDOW_RING_VERSION: the header, then
 * the expanded WindowState itself (same offsets for total and head_minute),
 * updated in place when called as an aggregate, as PostgreSQL allows a
 * transition function to do with its first argument. It exists only as a
 * transition state: the final function stores the compact form, and the
 * output and send functions (Citus ships a partial state as text) write the
 * compact form too; every reader expands it with WindowDecode.
 */
#define WINDOW_RING_SIZE (offsetof(WindowCounter, total) + sizeof(WindowState))

StaticAssertDecl(offsetof(WindowCounter, head_minute) - offsetof(WindowCounter, total) ==
				 offsetof(WindowState, head_minute) - offsetof(WindowState, total),
				 "window_counter and WindowState agree on total and head_minute");

/* The expanded state inside a ring-format counter. */
static inline WindowState *
WindowRing(WindowCounter *c)
{
	return (WindowState *) &c->total;
}

/*
 * The ring-format state to update: argument 0 itself when called as an
 * aggregate with a state this aggregate made, else a new one expanded from
 * argument 0 (or empty when it is NULL). *inagg: called as an aggregate.
 */
static WindowCounter *
WindowAggRing(FunctionCallInfo fcinfo, bool *inagg)
{
	WindowCounter *c;

	*inagg = AggCheckCallContext(fcinfo, NULL) != 0;
	if (*inagg && !PG_ARGISNULL(0))
	{
		struct varlena *raw = (struct varlena *) DatumGetPointer(PG_GETARG_DATUM(0));

		if (!VARATT_IS_EXTENDED(raw) && VARSIZE(raw) == WINDOW_RING_SIZE &&
			((WindowCounter *) raw)->version == WINDOW_RING_VERSION)
			return (WindowCounter *) raw;
	}
	c = palloc0(WINDOW_RING_SIZE);
	SET_VARSIZE(c, WINDOW_RING_SIZE);
	c->version = WINDOW_RING_VERSION;
	if (PG_ARGISNULL(0))
		WindowInit(WindowRing(c));
	else
		WindowDecode(PG_GETARG_WINDOW_COUNTER_P(0), WindowRing(c));
	return c;
}

/* The transition result: the ring state as an aggregate, the compact form otherwise. */
static Datum
WindowAggResult(WindowCounter *c, bool inagg)
{
	if (inagg)
		return PointerGetDatum(c);
	return PointerGetDatum(WindowEncode(WindowRing(c)));
}

/* tforge.window_agg_step(state, at [, n]): transition function of window_agg */
PG_FUNCTION_INFO_V1(window_agg_step);
Datum
window_agg_step(PG_FUNCTION_ARGS)
{
	WindowCounter *c;
	bool		inagg;
	int64		n = 1;

	if (PG_ARGISNULL(1) || (PG_NARGS() > 2 && PG_ARGISNULL(2)))
	{
		/* NULLs are skipped */
		if (PG_ARGISNULL(0))
			PG_RETURN_NULL();
		PG_RETURN_DATUM(PG_GETARG_DATUM(0));
	}
	if (PG_NARGS() > 2)
		n = PG_GETARG_INT64(2);
	c = WindowAggRing(fcinfo, &inagg);
	WindowAddEvents(WindowRing(c), PG_GETARG_TIMESTAMPTZ(1), n);
	return WindowAggResult(c, inagg);
}

/* tforge.window_agg_merge(a, b): combine function of window_agg */
PG_FUNCTION_INFO_V1(window_agg_merge);
Datum
window_agg_merge(PG_FUNCTION_ARGS)
{
	WindowCounter *c;
	WindowState other;
	bool		inagg;

	if (PG_ARGISNULL(1))
	{
		if (PG_ARGISNULL(0))
			PG_RETURN_NULL();
		PG_RETURN_DATUM(PG_GETARG_DATUM(0));
	}
	WindowDecode(PG_GETARG_WINDOW_COUNTER_P(1), &other);
	c = WindowAggRing(fcinfo, &inagg);
	WindowMergeInto(WindowRing(c), &other);
	return WindowAggResult(c, inagg);
}

/* tforge.window_agg_done(state): final function of window_agg, the compact form */
PG_FUNCTION_INFO_V1(window_agg_done);
Datum
window_agg_done(PG_FUNCTION_ARGS)
{
	WindowState w;

	WindowDecode(PG_GETARG_WINDOW_COUNTER_P(0), &w);
	PG_RETURN_POINTER(WindowEncode(&w));
}
