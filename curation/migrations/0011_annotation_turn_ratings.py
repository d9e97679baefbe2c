from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('curation', '0010_example_tools'),
    ]

    operations = [
        migrations.AddField(
            model_name='annotation',
            name='turn_ratings',
            field=models.JSONField(blank=True, default=dict, help_text='Ratings of single assistant turns, 1 to 5: {"<message index>": rating}.'),
        ),
    ]
