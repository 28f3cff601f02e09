"""The baseline plugins. Each module here is an ordinary benchbias plugin, loaded exactly like a
third party's plugin folder; this package exists so they install with benchbias."""
