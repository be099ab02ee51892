/*
 * red_aimd.c: the governor's pure arithmetic (seed 004), with no state.
 *
 * Random early detection (RED) turns a buffer's fill into a drop
 * probability; the AIMD state machine turns memory pressure into a scale
 * that multiplies the admission rate. The worker (governor.c) and admission
 * (admission.c) call the C functions; tforge.red_drop_probability,
 * tforge.red_should_drop and tforge.aimd_step expose the same code to SQL so
 * the regression tests pin what the worker does.
 */
#include "postgres.h"

#include <math.h>

#include "access/htup_details.h"
#include "fmgr.h"
#include "funcapi.h"
#include "utils/builtins.h"

#include "governor.h"

const char *const AimdStateNames[AIMD_NSTATES] = {"Normal", "Degraded", "Recovering"};

/* Refuse NaN and infinities; what names the argument in the message. */
static void
CheckFiniteArg(double value, const char *what)
{
	if (isnan(value) || isinf(value))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s must be a finite number, got %g", what, value)));
}

/* Refuse a value outside [lo, hi]. */
static void
CheckRange(double value, double lo, double hi, const char *what)
{
	CheckFiniteArg(value, what);
	if (value < lo || value > hi)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s must be between %g and %g, got %g", what, lo, hi, value)));
}

/*
 * RED drop probability of a buffer fill (fraction, >= 0):
 *
 *   p = 0                                         fill <  min_th
 *   p = max_p * (fill - min_th) / (max_th - min_th)   min_th <= fill < max_th
 *   p = max_p                                     fill >= max_th
 *
 * Seed defaults: min_th 0.6, max_th 1.0, max_p 0.3 (drop 30 % at a full
 * buffer, never more, so that 70 % of the load still gets through).
 */
double
RedDropProbability(double fill, double min_th, double max_th, double max_p)
{
	CheckFiniteArg(fill, "fill");
	if (fill < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("fill must not be negative, got %g", fill)));
	CheckRange(min_th, 0, 1e6, "min_th");
	CheckRange(max_th, 0, 1e6, "max_th");
	CheckRange(max_p, 0, 1, "max_p");
	if (!(min_th < max_th))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("min_th must be below max_th, got %g and %g", min_th, max_th)));

	if (fill < min_th)
		return 0.0;
	if (fill >= max_th)
		return max_p;
	return max_p * (fill - min_th) / (max_th - min_th);
}

/* Refuse AIMD parameters out of range or out of order (22023). */
void
AimdValidate(const AimdParams *p)
{
	CheckRange(p->enter, 0, 1e6, "enter");
	CheckRange(p->exit, 0, 1e6, "exit");
	CheckRange(p->severe, 0, 1e6, "severe");
	if (!(p->exit < p->enter && p->enter <= p->severe))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("thresholds out of order: exit %g, enter %g, severe %g", p->exit, p->enter, p->severe),
				 errhint("The thresholds must satisfy exit < enter <= severe.")));
	CheckFiniteArg(p->decrease, "decrease");
	if (!(p->decrease > 0 && p->decrease < 1))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("decrease must be between 0 and 1 (exclusive), got %g", p->decrease)));
	CheckFiniteArg(p->increase, "increase");
	if (!(p->increase > 0 && p->increase <= 1))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("increase must be in (0, 1], got %g", p->increase)));
	CheckFiniteArg(p->min_scale, "min_scale");
	if (!(p->min_scale > 0 && p->min_scale <= 1))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("min_scale must be in (0, 1], got %g", p->min_scale)));
}

/*
 * Scales are kept to 9 decimals so that additive steps land exactly on
 * the values a reader expects (0.1 + 0.05 is 0.15, not 0.15000000000000002)
 * and recovery reaches exactly 1.0.
 */
static double
RoundScale(double s)
{
	return rint(s * 1e9) / 1e9;
}

/*
 * One tick of the seed's AIMD state machine (pressure as a fraction):
 *
 *   Normal      pressure > enter   -> Degraded,   scale * decrease
 *   Degraded    pressure < exit    -> Recovering, scale unchanged
 *               pressure > severe  -> Degraded,   scale * decrease
 *   Recovering  pressure > enter   -> Degraded,   scale * decrease
 *               pressure < exit    -> scale + increase; at 1.0 -> Normal
 *   otherwise nothing changes (the gap between exit and enter is the
 *   hysteresis that stops oscillation).
 *
 * Every decrease is clamped at min_scale. Seed defaults: enter 0.70,
 * exit 0.55, severe 0.90, decrease 0.5, increase 0.05, min_scale 0.1.
 */
void
AimdStep(AimdState *state, double *scale, double pressure, const AimdParams *p)
{
	double		s = *scale;

	switch (*state)
	{
		case AIMD_NORMAL:
			if (pressure > p->enter)
			{
				*state = AIMD_DEGRADED;
				s = s * p->decrease;
			}
			break;
		case AIMD_DEGRADED:
			if (pressure < p->exit)
				*state = AIMD_RECOVERING;
			else if (pressure > p->severe)
				s = s * p->decrease;
			break;
		case AIMD_RECOVERING:
			if (pressure > p->enter)
			{
				*state = AIMD_DEGRADED;
				s = s * p->decrease;
			}
			else if (pressure < p->exit)
			{
				s = s + p->increase;
				if (s >= 1.0 - 1e-9)
				{
					s = 1.0;
					*state = AIMD_NORMAL;
				}
			}
			break;
	}
	*scale = RoundScale(Max(s, p->min_scale));
}

/* The state of a name (22023 for an unknown one). */
AimdState
AimdStateFromName(const char *name)
{
	for (int i = 0; i < AIMD_NSTATES; i++)
		if (pg_strcasecmp(name, AimdStateNames[i]) == 0)
			return (AimdState) i;
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("invalid governor state \"%s\"", name),
			 errhint("The states are Normal, Degraded and Recovering.")));
	return AIMD_NORMAL;			/* keep the compiler quiet */
}

/* Argument n as float8, refusing NULL with 22004. */
static double
Float8Arg(FunctionCallInfo fcinfo, int n, const char *what)
{
	if (PG_ARGISNULL(n))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("%s must not be NULL", what)));
	return PG_GETARG_FLOAT8(n);
}

/* red_drop_probability(fill, min_th, max_th, max_p) -> float8 */
PG_FUNCTION_INFO_V1(tforge_red_drop_probability);
Datum
tforge_red_drop_probability(PG_FUNCTION_ARGS)
{
	PG_RETURN_FLOAT8(RedDropProbability(PG_GETARG_FLOAT8(0), PG_GETARG_FLOAT8(1),
										PG_GETARG_FLOAT8(2), PG_GETARG_FLOAT8(3)));
}

/* red_should_drop(fill, min_th, max_th, max_p, draw) -> bool: draw < p */
PG_FUNCTION_INFO_V1(tforge_red_should_drop);
Datum
tforge_red_should_drop(PG_FUNCTION_ARGS)
{
	double		p = RedDropProbability(PG_GETARG_FLOAT8(0), PG_GETARG_FLOAT8(1),
									   PG_GETARG_FLOAT8(2), PG_GETARG_FLOAT8(3));
	double		draw = PG_GETARG_FLOAT8(4);

	CheckFiniteArg(draw, "draw");
	if (draw < 0 || draw >= 1)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("draw must be in [0, 1), got %g", draw),
				 errhint("Pass a uniform random number such as random().")));
	PG_RETURN_BOOL(draw < p);
}

/*
 * aimd_step(state aimd_state, pressure, enter, exit, severe, decrease,
 * increase, min_scale) -> aimd_state. A NULL state is the initial one
 * (Normal at scale 1).
 */
PG_FUNCTION_INFO_V1(tforge_aimd_step);
Datum
tforge_aimd_step(PG_FUNCTION_ARGS)
{
	AimdParams	p;
	AimdState	state = AIMD_NORMAL;
	double		scale = 1.0;
	double		pressure;
	TupleDesc	tupdesc;
	Datum		values[2];
	bool		nulls[2] = {false, false};

	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "aimd_step must return a composite type");
	tupdesc = BlessTupleDesc(tupdesc);

	pressure = Float8Arg(fcinfo, 1, "pressure");
	p.enter = Float8Arg(fcinfo, 2, "enter");
	p.exit = Float8Arg(fcinfo, 3, "exit");
	p.severe = Float8Arg(fcinfo, 4, "severe");
	p.decrease = Float8Arg(fcinfo, 5, "decrease");
	p.increase = Float8Arg(fcinfo, 6, "increase");
	p.min_scale = Float8Arg(fcinfo, 7, "min_scale");
	AimdValidate(&p);
	CheckFiniteArg(pressure, "pressure");
	if (pressure < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("pressure must not be negative, got %g", pressure)));

	if (!PG_ARGISNULL(0))
	{
		HeapTupleHeader in = PG_GETARG_HEAPTUPLEHEADER(0);
		bool		isnull;
		Datum		d;

		d = GetAttributeByNum(in, 1, &isnull);
		if (isnull)
			ereport(ERROR,
					(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					 errmsg("the state's state must not be NULL")));
		state = AimdStateFromName(TextDatumGetCString(d));
		d = GetAttributeByNum(in, 2, &isnull);
		if (isnull)
			ereport(ERROR,
					(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					 errmsg("the state's scale must not be NULL")));
		scale = DatumGetFloat8(d);
		CheckFiniteArg(scale, "scale");
		if (scale < p.min_scale || scale > 1)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("scale must be between min_scale %g and 1, got %g", p.min_scale, scale)));
		if (state == AIMD_NORMAL && scale != 1.0)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("state Normal has scale 1, got %g", scale)));
	}

	AimdStep(&state, &scale, pressure, &p);
	values[0] = CStringGetTextDatum(AimdStateNames[state]);
	values[1] = Float8GetDatum(scale);
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(tupdesc, values, nulls)));
}
