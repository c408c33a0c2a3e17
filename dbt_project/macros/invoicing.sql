{#- Line types the billing lifecycle adds to rating's lines (everything else is a rated charge). -#}
{% macro lifecycle_line_types() -%}
    ('adjustment', 'coupon', 'credit')
{%- endmacro %}

{#- Print order of a line: rated charges, late-usage adjustments, coupons, prepaid credits. -#}
{% macro line_sort_key(line_type) -%}
    case {{ line_type }}
        when 'adjustment' then 2
        when 'coupon' then 3
        when 'credit' then 4
        else 1
    end
{%- endmacro %}

{#- When a billing period closes: its end plus the grace period for late events. -#}
{% macro period_closes_at(period_end) -%}
    cast({{ dbt.dateadd('day', var('finalization_grace_days') | int, 'cast(' ~ period_end ~ ' as timestamp)') }} as timestamp)
{%- endmacro %}

{#- A document number: prefix, year, '-', sequence of at least 4 digits (2026-0610, CN-2026-0007). -#}
{% macro document_number(prefix, number_year, number_seq) -%}
    {{ dbt.concat([
        "coalesce(" ~ prefix ~ ", '')",
        dbt.cast(number_year, dbt.type_string()),
        "'-'",
        "case when " ~ number_seq ~ " < 10000 then lpad(" ~ dbt.cast(number_seq, dbt.type_string()) ~ ", 4, '0') else "
            ~ dbt.cast(number_seq, dbt.type_string()) ~ " end"
    ]) }}
{%- endmacro %}

{#-
  The columns of a ledger document line, shared by the proposals (int_ledger_proposals) and the
  ledger (ledger_document_lines), with their types. The ledger adds the number and booking time.
-#}
{% macro ledger_line_columns() -%}
    {{ return([
        ('document_id', dbt.type_string()),
        ('document_type', dbt.type_string()),
        ('issuer_id', dbt.type_string()),
        ('number_prefix', dbt.type_string()),
        ('invoice_id', dbt.type_string()),
        ('account_id', dbt.type_string()),
        ('currency', dbt.type_string()),
        ('minor_units', 'integer'),
        ('period_start', 'date'),
        ('period_end', 'date'),
        ('plan_code', dbt.type_string()),
        ('plan_version', 'integer'),
        ('issued_on', 'date'),
        ('closes_at', 'timestamp'),
        ('reason', dbt.type_string()),
        ('recalculated_at', 'timestamp'),
        ('line_id', dbt.type_string()),
        ('line_number', 'bigint'),
        ('line_type', dbt.type_string()),
        ('charge_id', dbt.type_string()),
        ('meter_code', dbt.type_string()),
        ('dimension_value', dbt.type_string()),
        ('pricing_model', dbt.type_string()),
        ('description', dbt.type_string()),
        ('quantity', decimal_type()),
        ('unit_price', decimal_type()),
        ('amount_unrounded', decimal_type()),
        ('amount', money_type()),
        ('amount_minor', 'bigint'),
        ('corrects_invoice_id', dbt.type_string()),
        ('corrects_line_id', dbt.type_string()),
        ('instrument_id', dbt.type_string()),
        ('ledger_version', 'bigint'),
    ]) }}
{%- endmacro %}

{#- Tier detail frozen with final invoice lines (ledger_invoice_line_tiers). -#}
{% macro ledger_tier_columns() -%}
    {{ return([
        ('line_id', dbt.type_string()),
        ('invoice_id', dbt.type_string()),
        ('tier_number', 'integer'),
        ('lower_bound', decimal_type()),
        ('upper_bound', decimal_type()),
        ('unit_price', decimal_type()),
        ('tier_quantity', decimal_type()),
        ('flat_fee_charged', decimal_type()),
        ('amount_unrounded', decimal_type()),
        ('ledger_version', 'bigint'),
    ]) }}
{%- endmacro %}

{#-
  The table another model built in an EARLIER run, read without ref(): the ledger books the drafts
  the previous run computed (the final invoice is the last draft), while the drafts are computed
  from the ledger (a ref). A ref in both directions would be a cycle. When the table does not exist
  yet (a new warehouse), an empty relation with `columns` stands in.
-#}
{% macro previous_run_relation(model_name, columns) -%}
    {%- set relation = none -%}
    {%- if execute -%}
        {%- for node in graph.nodes.values() if node.resource_type == 'model' and node.name == model_name -%}
            {%- set relation = adapter.get_relation(
                database=node.database, schema=node.schema, identifier=node.alias) -%}
            {%- if relation is not none -%}
                (select {% for name, _ in columns %}{{ name }}{{ ", " if not loop.last }}{% endfor %} from {{ relation }})
            {%- else -%}
                {{ empty_relation(columns) }}
            {%- endif -%}
        {%- endfor -%}
    {%- else -%}
        {{ empty_relation(columns) }}
    {%- endif -%}
{%- endmacro %}

{% macro empty_relation(columns) -%}
    (select {% for name, type in columns %}cast(null as {{ type }}) as {{ name }}{{ ", " if not loop.last }}{% endfor %} where 1 = 0)
{%- endmacro %}

{#- The ledger's own columns: the proposal columns plus the number and booking time. -#}
{% macro ledger_document_columns() -%}
    {{ return(ledger_line_columns() + [
        ('document_number', dbt.type_string()),
        ('number_year', 'integer'),
        ('number_seq', 'bigint'),
        ('finalized_at', 'timestamp'),
    ]) }}
{%- endmacro %}

{#-
  The ledger for readers (a ref, so lineage shows it). Runs that do not finalize (the daily
  pipeline) read it too; before the first close has created it, an empty relation stands in.
-#}
{% macro ledger_lines() -%}
    {{ ref_or_empty(ref('ledger_document_lines'), ledger_document_columns()) }}
{%- endmacro %}

{% macro ledger_tiers() -%}
    {{ ref_or_empty(ref('ledger_invoice_line_tiers'),
        [('tier_line_id', dbt.type_string())] + ledger_tier_columns()) }}
{%- endmacro %}

{% macro ref_or_empty(relation, columns) -%}
    {%- if execute and adapter.get_relation(
            database=relation.database, schema=relation.schema, identifier=relation.identifier) is none -%}
        {{ empty_relation(columns) }}
    {%- else -%}
        {{ relation }}
    {%- endif -%}
{%- endmacro %}
