/*
 * cron_schedule.c — the SQL-callable side of schedules (docs/reference.md#schedule): cron_next,
 * cron_occurrences, the validator used by the schedule table's trigger, and
 * the per-bucket load and greedy suggestions behind schedule_load() and
 * schedule_suggestions() (their SQL wrappers gather the jobs, see
 * src/sql/60_schedule.sql).
 *
 * Pure computation on arguments: no shared memory, no locks, no SPI.
 * Times: PostgreSQL timestamptz (microseconds since 2000-01-01) on this side,
 * epoch seconds in cron_parse.c; both UTC.
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "common/int.h"
#include "datatype/timestamp.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/timestamp.h"
#include "utils/tuplestore.h"

#include "compat.h"
#include "cron_parse.h"
#include "cron_schedule.h"

PG_FUNCTION_INFO_V1(taskguard_cron_next);
PG_FUNCTION_INFO_V1(taskguard_cron_occurrences);
PG_FUNCTION_INFO_V1(taskguard_cron_error);
PG_FUNCTION_INFO_V1(taskguard_cron_period);
PG_FUNCTION_INFO_V1(taskguard_schedule_load_buckets);
PG_FUNCTION_INFO_V1(taskguard_schedule_suggest);

/* Seconds between 1970-01-01 and 2000-01-01. */
#define SCHEDULE_EPOCH_SHIFT_SECS \
	((int64) (POSTGRES_EPOCH_JDATE - UNIX_EPOCH_JDATE) * SECS_PER_DAY)

/* Durations are clamped to this (400 days) so the arithmetic cannot overflow. */
#define SCHEDULE_MAX_DURATION (INT64CONST(400) * USECS_PER_DAY)

/* A run with no known duration counts as one minute (docs/reference.md#schedule). */
#define SCHEDULE_DEFAULT_DURATION USECS_PER_MINUTE

/* Buckets a job may be shifted by in suggestions, either side. */
#define SUGGEST_MARGIN 60

/* Parse a text argument, raising invalid_parameter_value on a bad expression. */
static void
ScheduleParseText(text *expr, CronSchedule *sched)
{
	CronError	err;

	if (!CronParse(VARDATA_ANY(expr), VARSIZE_ANY_EXHDR(expr), sched, &err))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid cron schedule: %s", err.message),
				 errhint("A schedule is five fields (minute hour day-of-month month day-of-week), an @ form such as @daily, or 'N seconds' with N from 1 to 59.")));
}

/* Refuse an infinite timestamp argument. */
static void
ScheduleCheckFinite(TimestampTz ts, const char *argname)
{
	if (TIMESTAMP_NOT_FINITE(ts))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("argument \"%s\" must be a finite timestamp", argname)));
}

/*
 * The first occurrence strictly after `after`; false when there is none in
 * the search window or within PostgreSQL's timestamp range.
 */
static bool
ScheduleNext(const CronSchedule *sched, TimestampTz after, TimestampTz *next)
{
	int64		secs = after / USECS_PER_SEC - (after % USECS_PER_SEC < 0 ? 1 : 0);
	int64		found;

	if (!CronNextAfter(sched, secs + SCHEDULE_EPOCH_SHIFT_SECS, &found))
		return false;
	found -= SCHEDULE_EPOCH_SHIFT_SECS;
	if (found > END_TIMESTAMP / USECS_PER_SEC || found < MIN_TIMESTAMP / USECS_PER_SEC)
		return false;
	*next = found * USECS_PER_SEC;
	return IS_VALID_TIMESTAMP(*next);
}

/* An interval as microseconds (a month is 30 days); clamped on overflow. */
static int64
ScheduleIntervalUsec(const Interval *iv)
{
	int64		days_us,
				months_us,
				total;

	if (pg_mul_s64_overflow((int64) iv->month, DAYS_PER_MONTH * USECS_PER_DAY, &months_us) ||
		pg_mul_s64_overflow((int64) iv->day, USECS_PER_DAY, &days_us) ||
		pg_add_s64_overflow(months_us, days_us, &total) ||
		pg_add_s64_overflow(total, iv->time, &total))
		return (iv->month < 0 || iv->day < 0 || iv->time < 0) ? PG_INT64_MIN : PG_INT64_MAX;
	return total;
}

/*
 * taskguard.cron_next(expr text, after timestamptz) RETURNS timestamptz:
 * the first occurrence strictly after `after`, in UTC; NULL past the end of
 * PostgreSQL's timestamp range.
 */
Datum
taskguard_cron_next(PG_FUNCTION_ARGS)
{
	text	   *expr = PG_GETARG_TEXT_PP(0);
	TimestampTz after = PG_GETARG_TIMESTAMPTZ(1);
	CronSchedule sched;
	TimestampTz next;

	ScheduleParseText(expr, &sched);
	ScheduleCheckFinite(after, "after");
	if (!ScheduleNext(&sched, after, &next))
		PG_RETURN_NULL();
	PG_RETURN_TIMESTAMPTZ(next);
}

typedef struct OccurrenceState
{
	CronSchedule sched;
	TimestampTz cursor;			/* the last occurrence returned */
	TimestampTz to;
	int64		count;
} OccurrenceState;

/*
 * taskguard.cron_occurrences(expr, from_ts, to_ts) RETURNS SETOF timestamptz:
 * every occurrence t with from_ts <= t < to_ts, at most
 * SCHEDULE_MAX_OCCURRENCES of them.
 */
Datum
taskguard_cron_occurrences(PG_FUNCTION_ARGS)
{
	FuncCallContext *funcctx;
	OccurrenceState *state;
	TimestampTz next;

	if (SRF_IS_FIRSTCALL())
	{
		text	   *expr = PG_GETARG_TEXT_PP(0);
		TimestampTz from = PG_GETARG_TIMESTAMPTZ(1);
		TimestampTz to = PG_GETARG_TIMESTAMPTZ(2);
		MemoryContext old;

		funcctx = SRF_FIRSTCALL_INIT();
		old = MemoryContextSwitchTo(funcctx->multi_call_memory_ctx);
		state = palloc0(sizeof(OccurrenceState));
		ScheduleParseText(expr, &state->sched);
		ScheduleCheckFinite(from, "from_ts");
		ScheduleCheckFinite(to, "to_ts");
		if (from > to)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("from_ts must not be later than to_ts")));
		state->cursor = from - 1;
		state->to = to;
		funcctx->user_fctx = state;
		MemoryContextSwitchTo(old);
	}
	funcctx = SRF_PERCALL_SETUP();
	state = funcctx->user_fctx;
	if (!ScheduleNext(&state->sched, state->cursor, &next) || next >= state->to)
		SRF_RETURN_DONE(funcctx);
	if (++state->count > SCHEDULE_MAX_OCCURRENCES)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("cron_occurrences would return more than %d rows",
						SCHEDULE_MAX_OCCURRENCES),
				 errhint("Narrow the range between from_ts and to_ts.")));
	state->cursor = next;
	SRF_RETURN_NEXT(funcctx, TimestampTzGetDatum(next));
}

/*
 * taskguard._cron_error(expr text) RETURNS text: NULL when expr is a valid
 * schedule, else the message naming the field and the offending text.
 */
Datum
taskguard_cron_error(PG_FUNCTION_ARGS)
{
	text	   *expr = PG_GETARG_TEXT_PP(0);
	CronSchedule sched;
	CronError	err;

	if (CronParse(VARDATA_ANY(expr), VARSIZE_ANY_EXHDR(expr), &sched, &err))
		PG_RETURN_NULL();
	PG_RETURN_TEXT_P(cstring_to_text(err.message));
}

/*
 * taskguard._cron_period(expr text, from_ts timestamptz) RETURNS interval:
 * the shortest gap between consecutive occurrences over the 31 days after
 * from_ts (further, up to 400 days, until two occurrences are seen).  NULL
 * for an invalid expression or fewer than two occurrences.
 */
Datum
taskguard_cron_period(PG_FUNCTION_ARGS)
{
	text	   *expr = PG_GETARG_TEXT_PP(0);
	TimestampTz from = PG_GETARG_TIMESTAMPTZ(1);
	CronSchedule sched;
	TimestampTz prev,
				next;
	int64		best = PG_INT64_MAX;
	int64		floor_gap;
	Interval   *result;

	if (!CronParse(VARDATA_ANY(expr), VARSIZE_ANY_EXHDR(expr), &sched, NULL) ||
		TIMESTAMP_NOT_FINITE(from) || !ScheduleNext(&sched, from, &prev))
		PG_RETURN_NULL();
	floor_gap = (sched.seconds > 0 ? sched.seconds : 60) * USECS_PER_SEC;
	for (int n = 0; n < 10000 && best > floor_gap; n++)
	{
		if (!ScheduleNext(&sched, prev, &next) || next - from > 400 * USECS_PER_DAY)
			break;
		best = Min(best, next - prev);
		prev = next;
		if (next - from > 31 * USECS_PER_DAY)
			break;
	}
	if (best == PG_INT64_MAX)
		PG_RETURN_NULL();
	result = palloc0(sizeof(Interval));
	result->time = best;
	PG_RETURN_INTERVAL_P(result);
}

/* The load window shared by the bucket functions. */
typedef struct LoadWindow
{
	TimestampTz start;
	int64		bucket;			/* microseconds */
	int			nbuckets;
} LoadWindow;

/* One job of the analysis: a parsed schedule and its run duration. */
typedef struct LoadJob
{
	bool		valid;
	CronSchedule sched;
	int64		duration;		/* microseconds, > 0 */
	char	   *expr;			/* the schedule text (suggestions render it) */
} LoadJob;

/*
 * Mark the buckets where a job starts (when starting is not NULL) and where
 * one of its runs [t, t + duration) overlaps (running).  Each loop turn
 * marks a new bucket or ends, so a job costs O(buckets) however often it
 * fires ('1 second' included).
 */
static void
LoadMarkJob(const LoadJob *job, const LoadWindow *w, bool *starting, bool *running)
{
	TimestampTz end = w->start + w->bucket * w->nbuckets;
	TimestampTz cursor,
				t;
	int			last = -1;

	if (starting != NULL)
	{
		cursor = w->start - 1;
		while (ScheduleNext(&job->sched, cursor, &t) && t < end)
		{
			int			b = (int) ((t - w->start) / w->bucket);

			starting[b] = true;
			cursor = w->start + (b + 1) * w->bucket - 1;
		}
	}
	cursor = w->start - job->duration;
	while (ScheduleNext(&job->sched, cursor, &t) && t < end)
	{
		int			b0 = t < w->start ? 0 : (int) ((t - w->start) / w->bucket);
		int64		stop = t + job->duration - w->start;
		int			b1 = (int) Min((int64) w->nbuckets - 1, (stop + w->bucket - 1) / w->bucket - 1);

		for (int b = Max(b0, last + 1); b <= b1; b++)
			running[b] = true;
		last = Max(last, b1);
		if (last >= w->nbuckets - 1)
			break;
		cursor = Max(t, w->start + (int64) (last + 1) * w->bucket - job->duration);
	}
}

/* Read the parallel arrays of schedules and durations into jobs. */
static LoadJob *
LoadReadJobs(ArrayType *exprs, ArrayType *durations, int *njobs)
{
	Datum	   *ed,
			   *dd;
	bool	   *en,
			   *dn;
	int			ne,
				nd;
	LoadJob    *jobs;

	deconstruct_array(exprs, TEXTOID, -1, false, TYPALIGN_INT, &ed, &en, &ne);
	deconstruct_array(durations, INTERVALOID, sizeof(Interval), false, TYPALIGN_DOUBLE,
					  &dd, &dn, &nd);
	if (ne != nd)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("schedules and durations must have the same length (%d and %d)", ne, nd)));
	jobs = palloc0(sizeof(LoadJob) * Max(ne, 1));
	for (int i = 0; i < ne; i++)
	{
		text	   *t;
		int64		dur;

		if (en[i])
			continue;
		t = DatumGetTextPP(ed[i]);
		jobs[i].valid = CronParse(VARDATA_ANY(t), VARSIZE_ANY_EXHDR(t), &jobs[i].sched, NULL);
		jobs[i].expr = text_to_cstring(t);
		dur = dn[i] ? SCHEDULE_DEFAULT_DURATION : ScheduleIntervalUsec(DatumGetIntervalP(dd[i]));
		jobs[i].duration = Min(Max(dur, 1), SCHEDULE_MAX_DURATION);
	}
	*njobs = ne;
	return jobs;
}

/*
 * Validate the window arguments of the bucket functions.  margin is how many
 * buckets the window may be widened by on each side (suggestions); the whole
 * range touched, runs of the longest duration included, must be valid
 * timestamps, which also keeps every sum below from overflowing.
 */
static void
LoadCheckWindow(const LoadWindow *w, int margin)
{
	int64		span,
				low,
				high;

	ScheduleCheckFinite(w->start, "start");
	if (w->bucket <= 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("bucket must be a positive interval without months")));
	if (w->nbuckets < 1 || w->nbuckets > SCHEDULE_MAX_BUCKETS)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("the number of buckets must be between 1 and %d, not %d",
						SCHEDULE_MAX_BUCKETS, w->nbuckets)));
	if (pg_mul_s64_overflow(w->bucket, (int64) w->nbuckets + 2 * margin, &span) ||
		pg_add_s64_overflow(w->start, span, &high) ||
		pg_add_s64_overflow(high, SCHEDULE_MAX_DURATION, &high) ||
		pg_sub_s64_overflow(w->start, span, &low) ||
		pg_sub_s64_overflow(low, SCHEDULE_MAX_DURATION, &low) ||
		!IS_VALID_TIMESTAMP(high) || !IS_VALID_TIMESTAMP(low))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("the load window is outside the timestamp range"),
				 errdetail("The buckets, and runs of up to 400 days around them, must fall between 4713 BC and 294276 AD.")));
}

/*
 * taskguard._schedule_load_buckets(start timestamptz, bucket interval,
 * nbuckets int, schedules text[], durations interval[])
 * RETURNS TABLE (bucket_start timestamptz, starting int, running int):
 * per bucket, how many jobs start in it and how many have a run overlapping
 * it (a job counts once per bucket).  Invalid schedules are skipped.
 */
Datum
taskguard_schedule_load_buckets(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	Interval   *bucket = PG_GETARG_INTERVAL_P(1);
	LoadWindow	w;
	LoadJob    *jobs;
	int			njobs;
	int32	   *starting_n,
			   *running_n;
	bool	   *starting,
			   *running;

	w.start = PG_GETARG_TIMESTAMPTZ(0);
	w.bucket = bucket->month != 0 ? 0 : ScheduleIntervalUsec(bucket);
	w.nbuckets = PG_GETARG_INT32(2);
	LoadCheckWindow(&w, 0);
	jobs = LoadReadJobs(PG_GETARG_ARRAYTYPE_P(3), PG_GETARG_ARRAYTYPE_P(4), &njobs);

	starting_n = palloc0(sizeof(int32) * w.nbuckets);
	running_n = palloc0(sizeof(int32) * w.nbuckets);
	starting = palloc(w.nbuckets);
	running = palloc(w.nbuckets);
	for (int j = 0; j < njobs; j++)
	{
		CHECK_FOR_INTERRUPTS();
		if (!jobs[j].valid)
			continue;
		memset(starting, 0, w.nbuckets);
		memset(running, 0, w.nbuckets);
		LoadMarkJob(&jobs[j], &w, starting, running);
		for (int b = 0; b < w.nbuckets; b++)
		{
			starting_n[b] += starting[b];
			running_n[b] += running[b];
		}
	}

	InitMaterializedSRF(fcinfo, 0);
	for (int b = 0; b < w.nbuckets; b++)
	{
		Datum		values[3];
		bool		nulls[3] = {false, false, false};

		values[0] = TimestampTzGetDatum(w.start + (int64) b * w.bucket);
		values[1] = Int32GetDatum(starting_n[b]);
		values[2] = Int32GetDatum(running_n[b]);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	return (Datum) 0;
}

/* A job's one-minute running mask over the window widened by SUGGEST_MARGIN. */
typedef struct SuggestJob
{
	bool	   *mask;			/* nbuckets + 2 * SUGGEST_MARGIN entries */
	int		   *set;			/* indexes of the true entries */
	int			nset;
	int			kmin,
				kmax;			/* minute shifts that keep every minute in 0-59 */
	int			shift;			/* applied shift */
	bool		moved;
} SuggestJob;

/* The best move found so far; compared field by field, smaller is better. */
typedef struct SuggestMove
{
	int			job;
	int			shift;
	int			peak;			/* the peak after the move */
	int			top;			/* the highest load among the job's new buckets */
	int64		sum;			/* the load already in the job's new buckets */
	int			distance;		/* buckets to the nearest other load (larger wins) */
} SuggestMove;

static bool
SuggestBetter(const SuggestMove *a, const SuggestMove *b)
{
	if (b->job < 0)
		return true;
	if (a->peak != b->peak)
		return a->peak < b->peak;
	if (a->top != b->top)
		return a->top < b->top;
	if (a->sum != b->sum)
		return a->sum < b->sum;
	if (a->distance != b->distance)
		return a->distance > b->distance;
	if (abs(a->shift) != abs(b->shift))
		return abs(a->shift) < abs(b->shift);
	return a->shift > b->shift;
}

/*
 * For each window bucket, the distance to the nearest bucket loaded above
 * the window's minimum (a job that runs all the time does not count).
 */
static void
SuggestDistances(const int *rest, int n, int *dist)
{
	int			floor_load = rest[0];
	int			d = n;

	for (int i = 1; i < n; i++)
		floor_load = Min(floor_load, rest[i]);
	for (int i = 0; i < n; i++)
	{
		d = rest[i] > floor_load ? 0 : Min(d + 1, n);
		dist[i] = d;
	}
	d = n;
	for (int i = n - 1; i >= 0; i--)
	{
		d = rest[i] > floor_load ? 0 : Min(d + 1, n);
		dist[i] = Min(dist[i], d);
	}
}

/* Does the job (at its current shift) run in a bucket whose load is peak? */
static bool
SuggestInPeak(const SuggestJob *job, const int *total, int n, int peak)
{
	for (int s = 0; s < job->nset; s++)
	{
		int			i = job->set[s] - SUGGEST_MARGIN + job->shift;

		if (i >= 0 && i < n && total[i] == peak)
			return true;
	}
	return false;
}

/* Add (delta 1) or remove (-1) a job, at the given shift, to per-bucket load. */
static void
SuggestAdd(const SuggestJob *job, int shift, int *load, int n, int delta)
{
	for (int s = 0; s < job->nset; s++)
	{
		int			i = job->set[s] - SUGGEST_MARGIN + shift;

		if (i >= 0 && i < n)
			load[i] += delta;
	}
}

/* Try every allowed shift of job j against the load without it. */
static void
SuggestTryJob(SuggestJob *jobs, int j, const int *total, int n, int *rest, int *dist,
			  SuggestMove *best)
{
	SuggestJob *job = &jobs[j];
	int			restmax = 0;

	memcpy(rest, total, sizeof(int) * n);
	SuggestAdd(job, job->shift, rest, n, -1);
	for (int i = 0; i < n; i++)
		restmax = Max(restmax, rest[i]);
	SuggestDistances(rest, n, dist);

	for (int k = job->kmin; k <= job->kmax; k++)
	{
		SuggestMove m = {j, k, 0, 0, 0, n};

		if (k == 0)
			continue;
		for (int s = 0; s < job->nset; s++)
		{
			int			i = job->set[s] - SUGGEST_MARGIN + k;

			if (i < 0 || i >= n)
				continue;
			m.top = Max(m.top, rest[i] + 1);
			m.sum += rest[i];
			m.distance = Min(m.distance, dist[i]);
		}
		m.peak = Max(restmax, m.top);
		if (SuggestBetter(&m, best))
			*best = m;
	}
}

/* Render the schedule with its minute field replaced by `minutes`. */
static char *
SuggestRender(const char *expr, uint64 minutes)
{
	StringInfoData buf;
	const char *rest = CronCanonicalAt(expr, strlen(expr));
	int			first = -1,
				last = -1,
				count = 0,
				step = 0;
	bool		even = true;

	for (int m = 0; m < 60; m++)
	{
		if (!((minutes >> m) & 1))
			continue;
		if (last >= 0)
		{
			if (step == 0)
				step = m - last;
			else if (m - last != step)
				even = false;
		}
		if (first < 0)
			first = m;
		last = m;
		count++;
	}
	initStringInfo(&buf);
	if (count == 1)
		appendStringInfo(&buf, "%d", first);
	else if (even && first == 0 && last + step > 59)
		appendStringInfo(&buf, "*/%d", step);
	else if (even && first < step && last + step > 59)
		appendStringInfo(&buf, "%d-59/%d", first, step);
	else
		for (int m = 0, n = 0; m < 60; m++)
			if ((minutes >> m) & 1)
				appendStringInfo(&buf, n++ ? ",%d" : "%d", m);

	/* the other four fields: canonical for @ forms, else the text as given */
	if (rest == NULL)
		rest = expr;
	while (*rest && strchr(CRON_BLANKS, *rest))
		rest++;
	while (*rest && !strchr(CRON_BLANKS, *rest))
		rest++;
	for (bool blank = false; *rest; rest++)
	{
		bool		is_blank = strchr(CRON_BLANKS, *rest) != NULL;

		if (!is_blank)
			appendStringInfoChar(&buf, *rest);
		else if (!blank)
			appendStringInfoChar(&buf, ' ');
		blank = is_blank;
	}
	while (buf.len > 0 && buf.data[buf.len - 1] == ' ')
		buf.data[--buf.len] = '\0';
	return buf.data;
}

/* Prepare one job for suggestions: its widened mask and its allowed shifts. */
static void
SuggestPrepare(const LoadJob *lj, const LoadWindow *wide, SuggestJob *sj)
{
	int			lo = -1,
				hi = -1;

	sj->mask = palloc0(wide->nbuckets);
	sj->set = palloc(sizeof(int) * wide->nbuckets);
	if (!lj->valid)
		return;
	LoadMarkJob(lj, wide, NULL, sj->mask);
	for (int i = 0; i < wide->nbuckets; i++)
		if (sj->mask[i])
			sj->set[sj->nset++] = i;
	if (lj->sched.seconds > 0)
		return;
	for (int m = 0; m < 60; m++)
		if ((lj->sched.minutes >> m) & 1)
			hi = m, lo = lo < 0 ? m : lo;
	sj->kmin = -lo;
	sj->kmax = 59 - hi;
}

/*
 * taskguard._schedule_suggest(start timestamptz, nbuckets int, capacity int,
 * schedules text[], durations interval[]) RETURNS TABLE (step int, job int,
 * suggested text, peak_before real, peak_after real).
 *
 * Greedy, on one-minute buckets: while the peak is a hotspot (> 70 % of
 * capacity), move the job that lowers the peak most to the least-loaded
 * minute shift that keeps every minute of its schedule in the same hour
 * (so its period and hours are unchanged); stop when no move lowers the
 * peak.  job is the 1-based index into the arrays.
 */
Datum
taskguard_schedule_suggest(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	int			capacity = PG_GETARG_INT32(2);
	LoadWindow	w,
				wide;
	LoadJob    *ljobs;
	SuggestJob *jobs;
	int			njobs,
			   *total,
			   *rest,
			   *dist;

	w.start = PG_GETARG_TIMESTAMPTZ(0);
	w.bucket = USECS_PER_MINUTE;
	w.nbuckets = PG_GETARG_INT32(1);
	LoadCheckWindow(&w, SUGGEST_MARGIN);
	if (capacity < 1)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("capacity must be at least 1, not %d", capacity)));
	ljobs = LoadReadJobs(PG_GETARG_ARRAYTYPE_P(3), PG_GETARG_ARRAYTYPE_P(4), &njobs);
	wide = w;
	wide.start = w.start - SUGGEST_MARGIN * w.bucket;
	wide.nbuckets = w.nbuckets + 2 * SUGGEST_MARGIN;

	jobs = palloc0(sizeof(SuggestJob) * Max(njobs, 1));
	total = palloc0(sizeof(int) * w.nbuckets);
	rest = palloc(sizeof(int) * w.nbuckets);
	dist = palloc(sizeof(int) * w.nbuckets);
	for (int j = 0; j < njobs; j++)
	{
		CHECK_FOR_INTERRUPTS();
		SuggestPrepare(&ljobs[j], &wide, &jobs[j]);
		for (int i = 0; i < w.nbuckets; i++)
			total[i] += jobs[j].mask[i + SUGGEST_MARGIN];
	}

	InitMaterializedSRF(fcinfo, 0);
	for (int step = 1; step <= njobs; step++)
	{
		SuggestMove best = {-1, 0, 0, 0, 0, 0};
		int			peak = 0;
		Datum		values[5];
		bool		nulls[5] = {false, false, false, false, false};

		for (int i = 0; i < w.nbuckets; i++)
			peak = Max(peak, total[i]);
		if ((double) peak / capacity <= 0.7)
			break;
		for (int j = 0; j < njobs; j++)
		{
			CHECK_FOR_INTERRUPTS();
			if (!jobs[j].moved && jobs[j].kmin < jobs[j].kmax &&
				SuggestInPeak(&jobs[j], total, w.nbuckets, peak))
				SuggestTryJob(jobs, j, total, w.nbuckets, rest, dist, &best);
		}
		if (best.job < 0 || best.peak >= peak)
			break;

		SuggestAdd(&jobs[best.job], 0, total, w.nbuckets, -1);
		SuggestAdd(&jobs[best.job], best.shift, total, w.nbuckets, 1);
		jobs[best.job].shift = best.shift;
		jobs[best.job].moved = true;

		values[0] = Int32GetDatum(step);
		values[1] = Int32GetDatum(best.job + 1);
		values[2] = CStringGetTextDatum(SuggestRender(ljobs[best.job].expr,
													  best.shift > 0
													  ? ljobs[best.job].sched.minutes << best.shift
													  : ljobs[best.job].sched.minutes >> -best.shift));
		values[3] = Float4GetDatum((float4) peak / capacity);
		values[4] = Float4GetDatum((float4) best.peak / capacity);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	return (Datum) 0;
}
