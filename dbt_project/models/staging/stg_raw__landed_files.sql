select
    file_sha256,
    file_name,
    file_format,
    file_seq,
    row_count,
    cast(landed_at as timestamp) as landed_at
from {{ source('raw', 'landed_files') }}
