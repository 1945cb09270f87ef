"""The ``timecard`` pipeline: worked intervals from real-world timecard spreadsheets, weekly hours
and pay under the Fair Labor Standards Act, and the findings a reviewer must look at."""
