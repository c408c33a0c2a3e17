{#-
  `unique` for a model incremental by arrival, at a cost that follows the batch, not history.
  When the model ran in this dbt invocation from a watermark (its pre_hook
  record_arrival_watermark_hooks recorded it), only the values of the rows it added
  (arrival_column above the watermark) are looked up, against every row of the model: a value
  added twice, or added again after an earlier run, fails. Earlier rows were checked by the build
  that added them, and rows are never updated. Otherwise (first or full-refresh build, `dbt test`
  on its own, the model not run in this invocation) it checks the whole model, like `unique`.
-#}
{% test unique_by_arrival(model, column_name, arrival_column='file_seq') %}
{%- set watermark = arrival_watermark_this_invocation(model) if execute else none -%}
{%- if watermark is none %}
select {{ column_name }} as unique_field, count(*) as n_records
from {{ model }}
where {{ column_name }} is not null
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
