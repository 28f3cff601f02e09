"""The files people exchange: results and leaderboard schemas, their validation on every read and
write, reading older schemas, and the provenance a results file records."""

from benchbias.foundation.exports import lazy_exports

__all__, __getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "schemas": ["LEADERBOARD_SCHEMA", "RESULTS_SCHEMA", "SCHEMAS"],
        "validation": ["InvalidFile", "check_leaderboard", "check_results", "load_leaderboard", "load_results"],
        "migrate": ["upgrade"],
        "provenance": ["provenance"],
        "isolation": ["isolation_of", "where_ran"],
    },
)
