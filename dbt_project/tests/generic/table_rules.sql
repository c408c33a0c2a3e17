{#-
  A table's column rules in one test node (decision 108): its key, its not-null columns, its
  unique columns and combinations and its accepted values. dbt spends 15-25 ms of CPU per test
  node whatever its query, and a pipeline run ran 135 of these rules as separate tests.

    data_tests:
      - table_rules:
          name: table_rules_fct_invoices
          arguments:
            primary_key: invoice_id            # present and unique
            not_null: [status, account_id]     # always present
            unique: [invoice_number]           # unique where present
            unique_combinations: [[a, b]]      # one row per (a, b)
            accepted_values:                   # where present, one of (numbers unquoted)
              status: [draft, final]

  Every argument is optional. The query is one `union all` branch per rule; it returns one row
  per broken rule and value: `rule` (e.g. `unique invoice_number`), the offending `value` as
  text (null for a null key or a null in a not-null column) and `n_records`.

  A model incremental by arrival (rows appended, never updated) passes `arrival_column`
  (file_seq): when the model ran in this dbt invocation from a watermark, the row rules
  (not_null, accepted_values) read only the rows it added, as unique_by_arrival does; the rows
  before were checked by the builds that added them. `arrivals_of` names the model whose
  watermark counts, for a view of its rows tested after it (fct_usage_event_outcomes).
  Key rules (primary_key, unique, unique_combinations) always read the whole table.

            arguments:
              arrival_column: file_seq
              not_null: [raw_event_key]
-#}
{% test table_rules(
    model,
    primary_key=none,
    not_null=[],
    unique=[],
    unique_combinations=[],
    accepted_values={},
    arrival_column=none,
    arrivals_of=none
) %}
{%- set text = dbt.type_string() -%}
{%- set branches = [] -%}
{%- set added_rows = "" -%}
{%- if arrival_column is not none and execute -%}
    {%- set watermark = arrival_watermark_this_invocation(model, arrivals_of) -%}
    {%- if watermark is not none -%}
        {%- set added_rows = " and " ~ arrival_column ~ " > " ~ watermark -%}
    {%- endif -%}
{%- endif -%}
{%- if primary_key is not none -%}
    {%- do branches.append(
        "select 'primary_key " ~ primary_key ~ "' as rule, cast(" ~ primary_key ~ " as " ~ text
        ~ ") as value, count(*) as n_records from " ~ model ~ " group by " ~ primary_key
        ~ " having count(*) > 1 or " ~ primary_key ~ " is null"
    ) -%}
{%- endif -%}
{%- for column in not_null -%}
    {%- do branches.append(
        "select 'not_null " ~ column ~ "' as rule, cast(null as " ~ text
        ~ ") as value, count(*) as n_records from " ~ model ~ " where " ~ column
        ~ " is null" ~ added_rows ~ " having count(*) > 0"
    ) -%}
{%- endfor -%}
{%- for column in unique -%}
    {%- do branches.append(
        "select 'unique " ~ column ~ "' as rule, cast(" ~ column ~ " as " ~ text
        ~ ") as value, count(*) as n_records from " ~ model ~ " where " ~ column
        ~ " is not null group by " ~ column ~ " having count(*) > 1"
    ) -%}
{%- endfor -%}
{%- for columns in unique_combinations -%}
    {%- set parts = [] -%}
    {%- for column in columns -%}
        {%- do parts.append("coalesce(cast(" ~ column ~ " as " ~ text ~ "), '')") -%}
        {%- if not loop.last %}{% do parts.append("'|'") %}{% endif -%}
    {%- endfor -%}
    {%- do branches.append(
        "select 'unique " ~ columns | join(", ") ~ "' as rule, " ~ dbt.concat(parts)
        ~ " as value, count(*) as n_records from " ~ model ~ " group by " ~ columns | join(", ")
        ~ " having count(*) > 1"
    ) -%}
{%- endfor -%}
{%- for column, values in accepted_values.items() -%}
    {%- set listed = [] -%}
    {%- for value in values -%}
        {%- do listed.append(value if value is number else dbt.string_literal(dbt.escape_single_quotes(value))) -%}
    {%- endfor -%}
    {%- do branches.append(
        "select 'accepted_values " ~ column ~ "' as rule, cast(" ~ column ~ " as " ~ text
        ~ ") as value, count(*) as n_records from " ~ model ~ " where " ~ column
        ~ " is not null and " ~ column ~ " not in (" ~ listed | join(", ") ~ ")" ~ added_rows
        ~ " group by " ~ column
    ) -%}
{%- endfor -%}
{%- if not branches -%}
    {{ exceptions.raise_compiler_error("table_rules on " ~ model ~ ": no rule given") }}
{%- endif -%}
{{ branches | join("\nunion all\n") }}
{% endtest %}
