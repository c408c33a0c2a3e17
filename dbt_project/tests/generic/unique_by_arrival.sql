{#-
  `unique` for a model incremental by arrival, at a cost that follows the batch, not history.
  When the model ran in this dbt invocation from a watermark (its pre_hook
  record_arrival_watermark_hooks recorded it), only the values of the rows it added
  (arrival_column above the watermark) are looked up, against every row of the model: a value
  added twice, or added again after an earlier run, fails. Earlier rows were checked by the build
  that added them, and rows are never updated. Otherwise (first or full-refresh build, `dbt test`
  on its own, the model not run in this invocation) it checks the whole model, like `unique`.
  With `hash_column` (the column's key_hash, stored beside it; decision 103) the lookup reads
  that column only: the hashes of the added values that occur more than once, then the rows with
  those hashes (usually none), grouped by the value itself. A value added twice has its hash
  twice, so it is among them; two values sharing a hash are told apart by the grouping.
  With `id_ranges` (the model's post_hook records its values' range per file:
  record_arrival_id_ranges, decision 119) the lookup reads only the files from the first whose
  range overlaps the added values on.
-#}
{% test unique_by_arrival(model, column_name, arrival_column='file_seq', hash_column=none, id_ranges=false) %}
{%- set watermark = arrival_watermark_this_invocation(model) if execute else none -%}
{%- if watermark is none %}
select {{ column_name }} as unique_field, count(*) as n_records
from {{ model }}
where {{ column_name }} is not null
group by {{ column_name }}
having count(*) > 1
{%- elif hash_column is not none %}
{%- set added_sql = 'select ' ~ column_name ~ ' as id from ' ~ model ~ ' where ' ~ arrival_column ~ ' > ' ~ watermark -%}
{%- set holding_files = arrival_files_holding(model, added_sql, arrival_column) if id_ranges else '1 = 1' %}
with repeated_hashes as (
    select {{ hash_column }} as field_hash
    from {{ model }}
    where {{ holding_files }} and {{ hash_column }} in (
        select {{ hash_column }} from {{ model }}
        where {{ arrival_column }} > {{ watermark }} and {{ column_name }} is not null
    )
    group by {{ hash_column }}
    having count(*) > 1
)

select {{ column_name }} as unique_field, count(*) as n_records
from {{ model }}
where {{ holding_files }}
    and {{ hash_column }} in (select field_hash from repeated_hashes)
    and {{ column_name }} is not null
group by {{ column_name }}
having count(*) > 1
{%- else %}
with added as (
    select distinct {{ column_name }} as unique_field
    from {{ model }}
    where {{ arrival_column }} > {{ watermark }} and {{ column_name }} is not null
)

select added.unique_field, count(*) as n_records
from {{ model }} as model_rows
inner join added on model_rows.{{ column_name }} = added.unique_field
group by added.unique_field
having count(*) > 1
{%- endif %}
{% endtest %}
