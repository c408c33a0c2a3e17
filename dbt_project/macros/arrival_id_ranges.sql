{#-
  Id ranges per arrival file (decision 119): for a model incremental by arrival, the lowest and
  highest id each landed file added, so that a run looking up its ids among earlier arrivals
  reads only the files whose range could hold one of them, not all of history.

  Clients that make time-ordered ids (the SDK's UUIDv7s; decision 118) send a day's events with
  that day's ids, so a new batch's [lowest, highest] id overlaps the ranges of the last few files
  and the lookup reads those. Random ids (uuid4) overlap every file: the lookup reads all of
  history, as without the ranges. A re-sent old id widens the batch's range back to its file.

  The table dbt_internal.dbt_arrival_id_ranges__<model> (file_seq, min_id, max_id) has one row
  per file the model holds, min_id/max_id NULL when none of the file's rows meets `where`. The
  model's post_hook keeps it (record_arrival_id_ranges): a full build recreates it from every row,
  an incremental one adds the files above the highest it holds (those of this run, read by
  file_seq, which the engine prunes). On DuckDB the hook runs in the model's transaction.
  Readers (arrival_files_holding) also read every file above the highest recorded one, so a
  missing hook (an older warehouse, a failed hook on an engine without transactions) costs
  time, never a missed id.
-#}
{% macro arrival_id_ranges_relation(relation) -%}
    {{ return(api.Relation.create(
        database=relation.database, schema='dbt_internal',
        identifier='dbt_arrival_id_ranges__' ~ relation.identifier
    )) }}
{%- endmacro %}

{#- The post_hook: post_hook=["{{ record_arrival_id_ranges('unique_id', \"outcome = 'accepted'\") }}"] -#}
{% macro record_arrival_id_ranges(id_column='unique_id', where='true', arrival_column='file_seq') -%}
    {%- set ranges = arrival_id_ranges_relation(this) -%}
    {%- set full_build = arrival_watermark_this_invocation(this) is none -%}
    {%- set existing = load_relation(ranges) -%}
    {%- set select_ranges -%}
        select
            {{ arrival_column }} as file_seq,
            min(case when {{ where }} then {{ id_column }} end) as min_id,
            max(case when {{ where }} then {{ id_column }} end) as max_id
        from {{ this }}
    {%- endset -%}
    {%- if full_build or existing is none -%}
        {%- do run_query(create_arrival_watermarks_schema()) -%}
        {%- if existing is not none -%}
            {%- do adapter.drop_relation(existing) -%}
        {%- endif -%}
        create table {{ ranges }} as
        {{ select_ranges }}
        group by {{ arrival_column }}
    {%- else -%}
        {%- set recorded = run_query('select coalesce(max(file_seq), 0) from ' ~ ranges).columns[0].values()[0] | int -%}
        insert into {{ ranges }} (file_seq, min_id, max_id)
        {{ select_ranges }}
        where {{ arrival_column }} > {{ recorded }}
        group by {{ arrival_column }}
    {%- endif -%}
{%- endmacro %}

{#-
  A predicate on `arrival_column` that keeps the files of `relation` (a model with id ranges)
  from the first one whose range overlaps the ids `ids_sql` selects (one column, `id`) on, and
  every file above the highest recorded one: `file_seq >= 58`. Files after the first overlapping
  one are kept whatever their range (a batch's range usually overlaps the newest files, and an
  old id re-sent widens it back to its file anyway); a single bound is what the engine prunes
  row groups and files by. The bound is a number in the SQL (as arrival_watermark's, decision
  107). `1 = 1` when it cannot tell (parsing, unit tests, no ranges recorded). Executes a query:
  call it where executing.
-#}
{% macro arrival_files_holding(relation, ids_sql, arrival_column='file_seq') -%}
    {%- if not execute or model.resource_type == 'unit_test' -%}
        {{ return('1 = 1') }}
    {%- endif -%}
    {%- set ranges = arrival_id_ranges_relation(relation) -%}
    {%- if load_relation(ranges) is none -%}
        {{ return('1 = 1') }}
    {%- endif -%}
    {%- set bounds = run_query(
        'select (select min(ranges.file_seq) from ' ~ ranges ~ ' as ranges'
        ~ ' inner join (select min(id) as low, max(id) as high from (' ~ ids_sql ~ ') as ids) as batch'
        ~ ' on ranges.max_id >= batch.low and ranges.min_id <= batch.high),'
        ~ ' (select coalesce(max(file_seq), 0) + 1 from ' ~ ranges ~ ')'
    ).rows[0] -%}
    {%- set first = bounds[1] | int if bounds[0] is none else [bounds[0] | int, bounds[1] | int] | min -%}
    {{ return(arrival_column ~ ' >= ' ~ first) }}
{%- endmacro %}
