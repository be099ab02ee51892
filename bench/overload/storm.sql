-- One submit of the storm; a refusal (53000) is counted, not an error.
SELECT storm_submit();
