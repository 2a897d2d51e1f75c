"""The media library: entities (movies, TV shows) enriched from TMDB and fanart.tv (artwork candidates and
actors), reviewed, and published as folders Kodi and Jellyfin read, with an NFO."""
