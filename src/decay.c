/*
 * decay.c: tforge.decay_score, a running exponentially decayed score.
 *
 * A score is kept relative to its last update: S = S(t_last), so reading or
 * updating it only ever multiplies by exp(-lambda * dt) with dt >= 0. No
 * exponent is ever positive, so events years apart underflow to zero instead
 * of overflowing. The decay rate travels inside the value as a half-life in
 * microseconds (exact, so two scores can be compared for "same rate");
 * lambda = ln 2 / half_life_seconds.
 *
 * Weights must be finite and >= 0: a score is a sum of non-negative decayed
 * weights, which keeps it non-negative, makes it only decrease between
 * events, and keeps ln S defined for the rank key.
 *
 * decay_agg's transition function updates its state in place when called as
 * an aggregate (the state is allocated in the aggregate context); called
 * directly, every function returns a new value.
 */
#include "postgres.h"

#include <math.h>

#include "common/int.h"
#include "common/shortest_dec.h"
#include "fmgr.h"
#include "libpq/pqformat.h"
#include "utils/builtins.h"
#include "utils/datetime.h"
#include "utils/float.h"
#include "utils/timestamp.h"

#include "decay.h"
#include "tforge.h"

#define DECAY_BINARY_VERSION 1
/* the text form's limit, which keeps doubled half-lives in int64 */
#define DECAY_MAX_HALF_LIFE_US (PG_INT64_MAX / 2)

/* lambda in 1/s for a half-life in microseconds */
static inline double
DecayLambda(const DecayScore *s)
{
	return M_LN2 / ((double) s->half_life_us / 1.0e6);
}

/* Seconds from a to b, b >= a, without overflowing int64 on the subtraction. */
static inline double
SecondsBetween(TimestampTz a, TimestampTz b)
{
	return ((double) b - (double) a) / 1.0e6;
}

int64
IntervalMicroseconds(const Interval *span, const char *what)
{
	int64		result;
	int64		days;
	int64		day_us;

	if (pg_mul_s64_overflow((int64) span->month, DAYS_PER_MONTH, &days) ||
		pg_add_s64_overflow(days, (int64) span->day, &days) ||
		pg_mul_s64_overflow(days, USECS_PER_DAY, &day_us) ||
		pg_add_s64_overflow(day_us, span->time, &result))
		ereport(ERROR,
				(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
				 errmsg("%s is out of range", what)));
	return result;
}

void
CheckFiniteTimestamp(TimestampTz at, const char *what)
{
	if (TIMESTAMP_NOT_FINITE(at))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s must be a finite timestamp, got \"%s\"",
						what, TIMESTAMP_IS_NOBEGIN(at) ? "-infinity" : "infinity")));
}

/* Half-life of an interval argument, in microseconds; must be positive. */
static int64
HalfLifeMicroseconds(const Interval *span)
{
	int64		us = IntervalMicroseconds(span, "half-life");

	if (us > DECAY_MAX_HALF_LIFE_US)
		ereport(ERROR,
				(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
				 errmsg("half-life is too large, got \"%s\"",
						DatumGetCString(DirectFunctionCall1(interval_out,
															PointerGetDatum(span)))),
				 errhint("The largest half-life is 4611686018427 s (about 146000 years).")));
	if (us <= 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("half-life must be positive, got \"%s\"",
						DatumGetCString(DirectFunctionCall1(interval_out,
															PointerGetDatum(span)))),
				 errhint("A half-life is the time after which a score has halved, e.g. '1 hour'.")));
	return us;
}

/* Refuse a weight that would make a score negative or not a number. */
static void
CheckWeight(double weight)
{
	if (isnan(weight) || isinf(weight) || weight < 0.0)
	{
		char		buf[DOUBLE_SHORTEST_DECIMAL_LEN];

		double_to_shortest_decimal_buf(weight, buf);
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("signal weight must be a finite number >= 0, got \"%s\"", buf),
				 errhint("Decay scores are sums of non-negative weights; record a negative signal as its own signal type.")));
	}
}

static void
CheckScoreOverflow(double score)
{
	if (isinf(score))
		ereport(ERROR,
				(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
				 errmsg("decay score overflows double precision")));
}

/*
 * S(at) = S(t_last) * exp(-lambda * (at - t_last)) + w   for at >= t_last
 * S(t_last) += w * exp(-lambda * (t_last - at))          for an older event
 *
 * An older event is decayed to t_last instead of moving the clock back, so
 * the order of events never changes the result (beyond rounding).
 */
static void
DecayAddEvent(DecayScore *s, double weight, TimestampTz at)
{
	CheckWeight(weight);
	CheckFiniteTimestamp(at, "signal time");

	if (TIMESTAMP_IS_NOBEGIN(s->t_last))
	{
		s->score = weight;
		s->t_last = at;
	}
	else if (at >= s->t_last)
	{
		s->score = s->score * exp(-DecayLambda(s) * SecondsBetween(s->t_last, at)) + weight;
		s->t_last = at;
	}
	else
		s->score += weight * exp(-DecayLambda(s) * SecondsBetween(at, s->t_last));

	CheckScoreOverflow(s->score);
}

/* Score of s at time at; before t_last the score is the one at t_last. */
static double
DecayValueAt(const DecayScore *s, TimestampTz at)
{
	if (TIMESTAMP_IS_NOBEGIN(s->t_last) || s->score == 0.0)
		return 0.0;
	if (at <= s->t_last)
		return s->score;
	return s->score * exp(-DecayLambda(s) * SecondsBetween(s->t_last, at));
}

static void
CheckSameRate(const DecayScore *a, const DecayScore *b)
{
	if (a->half_life_us != b->half_life_us)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("cannot combine decay scores with different half-lives"),
				 errdetail("One half-life is %g s, the other %g s.",
						   (double) a->half_life_us / 1.0e6,
						   (double) b->half_life_us / 1.0e6)));
}

/* merge(a, b): both decayed to the later update, then summed. */
static void
DecayMergeInto(DecayScore *dst, const DecayScore *src)
{
	CheckSameRate(dst, src);
	if (TIMESTAMP_IS_NOBEGIN(src->t_last))
		return;
	if (TIMESTAMP_IS_NOBEGIN(dst->t_last))
	{
		dst->score = src->score;
		dst->t_last = src->t_last;
		return;
	}
	if (src->t_last > dst->t_last)
	{
		dst->score = dst->score * exp(-DecayLambda(dst) * SecondsBetween(dst->t_last, src->t_last))
			+ src->score;
		dst->t_last = src->t_last;
	}
	else
		dst->score += src->score * exp(-DecayLambda(dst) * SecondsBetween(src->t_last, dst->t_last));
	CheckScoreOverflow(dst->score);
}

/* Validation shared by the text and binary input functions. */
static void
CheckDecayScore(const DecayScore *s, const char *input)
{
	const char *problem = NULL;

	if (isnan(s->score) || isinf(s->score) || s->score < 0.0)
		problem = "The score must be a finite number >= 0.";
	else if (s->half_life_us <= 0 || s->half_life_us > DECAY_MAX_HALF_LIFE_US)
		problem = "The half-life must be positive and at most 4611686018427 s.";
	else if (TIMESTAMP_IS_NOEND(s->t_last))
		problem = "The last update cannot be infinity.";
	else if (TIMESTAMP_IS_NOBEGIN(s->t_last) && s->score != 0.0)
		problem = "A score without a last update (-infinity) must be 0.";
	/* binary input can carry any int64; one the timestamp type cannot print would break pg_dump */
	else if (!TIMESTAMP_IS_NOBEGIN(s->t_last) && !IS_VALID_TIMESTAMP(s->t_last))
		problem = "The last update is out of the timestamp range.";

	if (problem)
	{
		if (input)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_TEXT_REPRESENTATION),
					 errmsg("invalid input syntax for type decay_score: \"%s\"", input),
					 errdetail("%s", problem)));
		else
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_BINARY_REPRESENTATION),
					 errmsg("invalid external decay_score value"),
					 errdetail("%s", problem)));
	}
}

static void pg_attribute_noreturn()
DecaySyntaxError(const char *input, const char *detail)
{
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_TEXT_REPRESENTATION),
			 errmsg("invalid input syntax for type decay_score: \"%s\"", input),
			 errdetail("%s", detail),
			 errhint("The format is (score,last update,half-life in seconds), e.g. (1.5,2026-01-01 00:00:00+00,3600).")));
}

static bool ParseTimestampFields(const char *str, size_t len, TimestampTz *result);

/* A finite double from str[0..len); false on anything else. */
static bool
ParseDouble(const char *str, size_t len, double *result)
{
	char		buf[64];
	char	   *end;

	while (len > 0 && isspace((unsigned char) *str))
		str++, len--;
	while (len > 0 && isspace((unsigned char) str[len - 1]))
		len--;
	if (len == 0 || len >= sizeof(buf))
		return false;
	memcpy(buf, str, len);
	buf[len] = '\0';
	errno = 0;
	*result = strtod(buf, &end);
	/* ERANGE with a nonzero finite result is a subnormal, which binary input and output carry */
	return *end == '\0' && !isnan(*result) && !isinf(*result) &&
		(errno == 0 || (errno == ERANGE && *result != 0.0));
}

/*
 * A timestamptz (or -infinity) from str[0..len). PostgreSQL's date parser
 * reports most problems by return code, but a few (an unknown time zone, for
 * one) as errors of their own; those are turned into this type's 22P02.
 */
static bool
ParseTimestamp(const char *input, const char *str, size_t len, TimestampTz *result)
{
	MemoryContext cxt = CurrentMemoryContext;
	volatile bool ok = false;

	PG_TRY();
	{
		ok = ParseTimestampFields(str, len, result);
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		MemoryContextSwitchTo(cxt);
		edata = CopyErrorData();
		/* only a complaint about the data becomes ours; anything else goes on */
		if (ERRCODE_TO_CATEGORY(edata->sqlerrcode) != ERRCODE_DATA_EXCEPTION)
			PG_RE_THROW();
		FlushErrorState();
		DecaySyntaxError(input, psprintf("The last update is not a valid timestamp: %s.", edata->message));
	}
	PG_END_TRY();
	return ok;
}

/* The date parser proper: false on a malformed timestamp. */
static bool
ParseTimestampFields(const char *str, size_t len, TimestampTz *result)
{
	char		text[MAXDATELEN + 1];
	char		workbuf[MAXDATELEN + MAXDATEFIELDS];
	char	   *field[MAXDATEFIELDS];
	int			ftype[MAXDATEFIELDS];
	int			nf;
	int			dtype;
	int			tz;
	fsec_t		fsec;
	struct pg_tm tt;

	if (len == 0 || len > MAXDATELEN)
		return false;
	memcpy(text, str, len);
	text[len] = '\0';
	if (ParseDateTime(text, workbuf, sizeof(workbuf), field, ftype, MAXDATEFIELDS, &nf) != 0 ||
		DecodeDateTime(field, ftype, nf, &dtype, &tt, &fsec, &tz) != 0)
		return false;
	switch (dtype)
	{
		case DTK_DATE:
			return tm2timestamp(&tt, fsec, &tz, result) == 0 && IS_VALID_TIMESTAMP(*result);
		case DTK_EPOCH:
			*result = SetEpochTimestamp();
			return true;
		case DTK_EARLY:
			TIMESTAMP_NOBEGIN(*result);
			return true;
		default:
			return false;
	}
}

/* Text form: (score,last update,half-life seconds) */
PG_FUNCTION_INFO_V1(decay_score_in);
Datum
decay_score_in(PG_FUNCTION_ARGS)
{
	char	   *input = PG_GETARG_CSTRING(0);
	DecayScore *result = palloc(sizeof(DecayScore));
	const char *p = input;
	const char *open;
	const char *close;
	const char *comma1;
	const char *comma2;
	double		half_life;

	while (isspace((unsigned char) *p))
		p++;
	open = p;
	close = strrchr(input, ')');
	if (*open != '(' || close == NULL)
		DecaySyntaxError(input, "The value must be enclosed in parentheses.");
	for (p = close + 1; *p; p++)
		if (!isspace((unsigned char) *p))
			DecaySyntaxError(input, "Junk after the closing parenthesis.");
	comma1 = strchr(open, ',');
	comma2 = comma1 ? memchr(comma1 + 1, ',', close - comma1 - 1) : NULL;
	if (comma1 == NULL || comma1 > close || comma2 == NULL ||
		memchr(comma2 + 1, ',', close - comma2 - 1) != NULL)
		DecaySyntaxError(input, "Expected three fields separated by commas.");

	if (!ParseDouble(open + 1, comma1 - open - 1, &result->score))
		DecaySyntaxError(input, "The score is not a finite number.");
	if (!ParseTimestamp(input, comma1 + 1, comma2 - comma1 - 1, &result->t_last))
		DecaySyntaxError(input, "The last update is not a valid timestamp.");
	if (!ParseDouble(comma2 + 1, close - comma2 - 1, &half_life) ||
		half_life <= 0.0 || half_life > (double) DECAY_MAX_HALF_LIFE_US / 1.0e6)
		DecaySyntaxError(input, "The half-life is not a positive number of seconds.");
	result->half_life_us = (int64) llround(half_life * 1.0e6);

	CheckDecayScore(result, input);
	PG_RETURN_DECAY_SCORE_P(result);
}

PG_FUNCTION_INFO_V1(decay_score_out);
Datum
decay_score_out(PG_FUNCTION_ARGS)
{
	DecayScore *s = PG_GETARG_DECAY_SCORE_P(0);
	char		score[DOUBLE_SHORTEST_DECIMAL_LEN];
	char		half_life[DOUBLE_SHORTEST_DECIMAL_LEN];
	char	   *t_last;

	/* shortest exact decimals, whatever extra_float_digits says */
	double_to_shortest_decimal_buf(s->score, score);
	double_to_shortest_decimal_buf((double) s->half_life_us / 1.0e6, half_life);
	t_last = DatumGetCString(DirectFunctionCall1(timestamptz_out,
												 TimestampTzGetDatum(s->t_last)));
	PG_RETURN_CSTRING(psprintf("(%s,%s,%s)", score, t_last, half_life));
}

/* Binary form: version byte, float8 score, int8 last update, int8 half-life (us). */
PG_FUNCTION_INFO_V1(decay_score_recv);
Datum
decay_score_recv(PG_FUNCTION_ARGS)
{
	StringInfo	buf = (StringInfo) PG_GETARG_POINTER(0);
	DecayScore *result = palloc(sizeof(DecayScore));
	int			version = pq_getmsgbyte(buf);

	if (version != DECAY_BINARY_VERSION)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_BINARY_REPRESENTATION),
				 errmsg("unsupported decay_score binary format version %d", version)));
	result->score = pq_getmsgfloat8(buf);
	result->t_last = pq_getmsgint64(buf);
	result->half_life_us = pq_getmsgint64(buf);
	CheckDecayScore(result, NULL);
	PG_RETURN_DECAY_SCORE_P(result);
}

PG_FUNCTION_INFO_V1(decay_score_send);
Datum
decay_score_send(PG_FUNCTION_ARGS)
{
	DecayScore *s = PG_GETARG_DECAY_SCORE_P(0);
	StringInfoData buf;

	pq_begintypsend(&buf);
	pq_sendbyte(&buf, DECAY_BINARY_VERSION);
	pq_sendfloat8(&buf, s->score);
	pq_sendint64(&buf, s->t_last);
	pq_sendint64(&buf, s->half_life_us);
	PG_RETURN_BYTEA_P(pq_endtypsend(&buf));
}

/* decay_empty(half_life): an empty score */
PG_FUNCTION_INFO_V1(decay_empty);
Datum
decay_empty(PG_FUNCTION_ARGS)
{
	DecayScore *result = palloc(sizeof(DecayScore));

	result->half_life_us = HalfLifeMicroseconds(PG_GETARG_INTERVAL_P(0));
	result->score = 0.0;
	TIMESTAMP_NOBEGIN(result->t_last);
	PG_RETURN_DECAY_SCORE_P(result);
}

/* decay_score(weight, at, half_life): the score of one event */
PG_FUNCTION_INFO_V1(decay_new);
Datum
decay_new(PG_FUNCTION_ARGS)
{
	DecayScore *result = palloc(sizeof(DecayScore));

	result->half_life_us = HalfLifeMicroseconds(PG_GETARG_INTERVAL_P(2));
	result->score = 0.0;
	TIMESTAMP_NOBEGIN(result->t_last);
	DecayAddEvent(result, PG_GETARG_FLOAT8(0), PG_GETARG_TIMESTAMPTZ(1));
	PG_RETURN_DECAY_SCORE_P(result);
}

PG_FUNCTION_INFO_V1(decay_add);
Datum
decay_add(PG_FUNCTION_ARGS)
{
	DecayScore *result = palloc(sizeof(DecayScore));

	*result = *PG_GETARG_DECAY_SCORE_P(0);
	DecayAddEvent(result, PG_GETARG_FLOAT8(1), PG_GETARG_TIMESTAMPTZ(2));
	PG_RETURN_DECAY_SCORE_P(result);
}

PG_FUNCTION_INFO_V1(decay_value);
Datum
decay_value(PG_FUNCTION_ARGS)
{
	DecayScore *s = PG_GETARG_DECAY_SCORE_P(0);
	TimestampTz at = PG_GETARG_TIMESTAMPTZ(1);

	CheckFiniteTimestamp(at, "time");
	PG_RETURN_FLOAT8(DecayValueAt(s, at));
}

PG_FUNCTION_INFO_V1(decay_merge);
Datum
decay_merge(PG_FUNCTION_ARGS)
{
	DecayScore *result = palloc(sizeof(DecayScore));

	*result = *PG_GETARG_DECAY_SCORE_P(0);
	DecayMergeInto(result, PG_GETARG_DECAY_SCORE_P(1));
	PG_RETURN_DECAY_SCORE_P(result);
}

/*
 * Forward-decay rank key: ln S(t_last) + lambda * t_last, t_last in seconds
 * since 2000-01-01 00:00 UTC. For any t >= t_last, ln S(t) equals the key
 * minus lambda * t, the same shift for every score of one rate, so ordering
 * by the key is ordering by the current score at any time. A zero score gets
 * DECAY_RANK_FLOOR, below every positive score's key.
 */
PG_FUNCTION_INFO_V1(decay_rank_key);
Datum
decay_rank_key(PG_FUNCTION_ARGS)
{
	DecayScore *s = PG_GETARG_DECAY_SCORE_P(0);

	if (TIMESTAMP_IS_NOBEGIN(s->t_last) || s->score <= 0.0)
		PG_RETURN_FLOAT8(DECAY_RANK_FLOOR);
	PG_RETURN_FLOAT8(log(s->score) + DecayLambda(s) * ((double) s->t_last / 1.0e6));
}

PG_FUNCTION_INFO_V1(decay_half_life);
Datum
decay_half_life(PG_FUNCTION_ARGS)
{
	DecayScore *s = PG_GETARG_DECAY_SCORE_P(0);
	Interval   *result = palloc0(sizeof(Interval));

	result->time = s->half_life_us;
	PG_RETURN_INTERVAL_P(result);
}

PG_FUNCTION_INFO_V1(decay_last_update);
Datum
decay_last_update(PG_FUNCTION_ARGS)
{
	DecayScore *s = PG_GETARG_DECAY_SCORE_P(0);

	if (TIMESTAMP_IS_NOBEGIN(s->t_last))
		PG_RETURN_NULL();
	PG_RETURN_TIMESTAMPTZ(s->t_last);
}

/*
 * decay_agg(weight, at, half_life) transition. Rows with a NULL weight or
 * time are skipped, as sum() skips NULLs. In an aggregate the state lives in
 * the aggregate context and is updated in place; called as a plain function
 * it works on a copy in the caller's context.
 */
PG_FUNCTION_INFO_V1(decay_agg_trans);
Datum
decay_agg_trans(PG_FUNCTION_ARGS)
{
	MemoryContext aggcontext;
	bool		inagg;
	DecayScore *state;
	int64		half_life_us;

	if (PG_ARGISNULL(1) || PG_ARGISNULL(2))
	{
		if (PG_ARGISNULL(0))
			PG_RETURN_NULL();
		PG_RETURN_DATUM(PG_GETARG_DATUM(0));
	}
	RequireArg(fcinfo, 3, "half_life");
	inagg = AggCheckCallContext(fcinfo, &aggcontext) != 0;
	if (!inagg)
		aggcontext = CurrentMemoryContext;

	if (PG_ARGISNULL(0))
	{
		half_life_us = HalfLifeMicroseconds(PG_GETARG_INTERVAL_P(3));
		state = MemoryContextAlloc(aggcontext, sizeof(DecayScore));
		state->half_life_us = half_life_us;
		state->score = 0.0;
		TIMESTAMP_NOBEGIN(state->t_last);
	}
	else
	{
		Interval   *span = PG_GETARG_INTERVAL_P(3);

		state = PG_GETARG_DECAY_SCORE_P(0);
		if (!inagg)
		{
			DecayScore *copy = palloc(sizeof(DecayScore));

			memcpy(copy, state, sizeof(DecayScore));
			state = copy;
		}
		/* the common case, a constant half-life, costs no division */
		if (span->month != 0 || span->day != 0 || span->time != state->half_life_us)
		{
			half_life_us = HalfLifeMicroseconds(span);
			if (half_life_us != state->half_life_us)
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("decay_agg needs one half-life per group"),
						 errdetail("Half-lives %g s and %g s both occur.",
								   (double) state->half_life_us / 1.0e6,
								   (double) half_life_us / 1.0e6)));
		}
	}
	DecayAddEvent(state, PG_GETARG_FLOAT8(1), PG_GETARG_TIMESTAMPTZ(2));
	PG_RETURN_DECAY_SCORE_P(state);
}
